//! Running the `umbilical` binary as a user would.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const UMBILICAL: &str = env!("CARGO_BIN_EXE_umbilical");

/// How long any one `umbilical` run in these tests may take; a hang fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Runs `umbilical ARGS`, feeding `stdin` from a thread, and collects all,
/// within [`RUN_LIMIT`].
pub fn umbilical(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(UMBILICAL);
    cmd.args(args);
    output_within(&mut cmd, stdin, RUN_LIMIT)
}

/// `cmd.output()` with `stdin` fed from a thread, bounded: a run (or its
/// output, held open by something it left behind) past `limit` is killed
/// and fails the test.
/// Why `got` is not `want`: both lengths and the first differing offset,
/// so a failed byte-exact check says whether bytes were lost, cut or changed.
pub fn mismatch(got: &[u8], want: &[u8]) -> String {
    let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    format!("got {} bytes, want {}, first difference at byte {first}", got.len(), want.len())
}

pub fn output_within(cmd: &mut Command, stdin: &[u8], limit: Duration) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the command");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = wait_within(&mut child, limit, "the command");
    let left = || limit.saturating_sub(start.elapsed()).max(Duration::from_secs(1));
    let stdout = stdout.recv_timeout(left()).expect("its stdout closed within the limit");
    let stderr = stderr.recv_timeout(left()).expect("its stderr closed within the limit");
    Output { status, stdout, stderr }
}

/// Reads `from` to its end in a thread: the bytes arrive on the receiver,
/// whose `recv_timeout` bounds a read that something holds open.
pub fn collect(mut from: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Waits for `child` at most `limit`; kills it and fails on a hang.
pub fn wait_within(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            // Where it hangs, for the failure message: each thread's wait
            // channel and state, before it is killed.
            let threads = threads_of(child.id());
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (hang); its threads: {threads}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `NAME STATE WCHAN` of each thread of `pid` (Linux `/proc`), for a
/// hang's message.
fn threads_of(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return "unknown".into() };
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap_or_default().trim().to_string();
    tasks
        .flatten()
        .map(|t| {
            let stat = read(t.path().join("stat"));
            let state = stat.rfind(')').and_then(|i| stat.get(i + 2..i + 3)).unwrap_or("?").to_string();
            format!("{} {state} {}", read(t.path().join("comm")), read(t.path().join("wchan")))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether a process other than this test whose command line contains
/// `marker` is running (a zombie has an empty command line).
pub fn running(marker: &str) -> bool {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    dir.flatten().filter(|e| e.file_name() != me.as_str()).any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(marker))
    })
}

/// Waits (bounded) until nothing runs with `marker` in its command line.
pub fn gone(marker: &str) -> bool {
    let start = Instant::now();
    while running(marker) {
        if start.elapsed() > Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// One way to start the program: `run`'s extra arguments, and a `PATH`
/// to give `run` (for ssh, a directory whose `ssh` adds the test key).
pub struct Via {
    pub args: Vec<String>,
    pub path: Option<String>,
}

impl std::fmt::Debug for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.args.fmt(f)
    }
}

impl Via {
    pub fn is_direct(&self) -> bool {
        self.args.is_empty()
    }

    /// `run ARGS` through this launcher, with `--shim` when `shim`.
    pub fn command(&self, before: &[&str], after: &[&str], shim: bool) -> Command {
        let mut cmd = Command::new(UMBILICAL);
        cmd.arg("run").args(before).args(&self.args);
        if shim {
            cmd.arg("--shim");
        }
        cmd.args(after);
        if let Some(path) = &self.path {
            cmd.env("PATH", path);
        }
        cmd
    }
}

/// No launcher, then each launcher that switches to the test user set up
/// by `scripts/launchers.sh`: sudo, doas, runuser, su, and ssh to the
/// loopback sshd (through a wrapper `ssh` first on `PATH` that adds the
/// test key, since `--via ssh:` takes no ssh options). A visible SKIP for
/// each that is not set up.
pub fn vias(what: &str) -> Vec<Via> {
    let mut vias = vec![Via { args: vec![], path: None }];
    let Ok(user) = std::env::var("UMBILICAL_TEST_USER") else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIP: {what} through sudo/doas/runuser/su/ssh: UMBILICAL_TEST_USER unset (scripts/launchers.sh)"
        );
        return vias;
    };
    for l in ["sudo", "doas", "runuser", "su", "setpriv"] {
        vias.push(Via { args: vec!["--via".into(), format!("{l}:{user}")], path: None });
    }
    match (std::env::var("UMBILICAL_TEST_SSH_PORT"), std::env::var("UMBILICAL_TEST_SSH_KEY")) {
        (Ok(port), Ok(key)) => {
            // Under target/ (cargo's scratch directory for integration
            // tests), not /tmp: nothing of a test run stays in /tmp.
            let dir =
                std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("driven-ssh-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let wrapper = dir.join("ssh");
            let script = format!(
                "#!/bin/sh\nexec /usr/bin/ssh -i '{key}' -o BatchMode=yes -o StrictHostKeyChecking=no \
                 -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"$@\"\n"
            );
            std::fs::write(&wrapper, script).unwrap();
            let _ = Command::new("chmod").arg("755").arg(&wrapper).status();
            let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
            vias.push(Via { args: vec!["--via".into(), format!("ssh:{user}@127.0.0.1:{port}")], path: Some(path) });
        }
        _ => {
            let _ = writeln!(std::io::stderr(), "SKIP: {what} through ssh: no loopback sshd (scripts/launchers.sh)");
        }
    }
    vias
}

/// Sends signal `sig` to `pid` with kill(1).
pub fn send(pid: u32, sig: i32) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap().success();
    assert!(ok, "kill -{sig} {pid}");
}

/// SIGUSR1's number on this OS.
pub fn libc_usr1() -> i32 {
    if cfg!(any(target_os = "macos", target_os = "freebsd")) { 30 } else { 10 }
}

/// The engines that answer here, each with its container, and the static
/// shim; SKIP for what is missing.
pub fn engines(what: &str) -> Vec<(&'static str, String, String)> {
    let skip = |why: &str| {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("SKIP: {what}: {why}\n").as_bytes());
    };
    let Ok(shim) = std::env::var("UMBILICAL_TEST_STATIC_SHIM") else {
        skip("UMBILICAL_TEST_STATIC_SHIM unset (scripts/test.sh builds it)");
        return Vec::new();
    };
    let mut found = Vec::new();
    for (engine, var) in [("docker", "UMBILICAL_TEST_DOCKER_CONTAINER"), ("podman", "UMBILICAL_TEST_PODMAN_CONTAINER")]
    {
        match std::env::var(var) {
            Ok(c) if engine != "docker" || std::env::var("DOCKER_HOST").is_ok() => {
                found.push((engine, c, shim.clone()))
            }
            _ => skip(&format!("{var} unset (scripts/containers.sh start)")),
        }
    }
    found
}
