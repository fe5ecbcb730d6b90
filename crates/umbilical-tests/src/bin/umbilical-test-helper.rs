//! A small program with one job per sub-command, so that the integration
//! tests drive the same behaviour on every OS instead of depending on
//! whatever tools a machine has.
//!
//! Sub-commands:
//! - `echo`: copy stdin to stdout until EOF, then exit 0
//! - `count`: read stdin until EOF, print the byte count, exit 0
//! - `exit N`: exit with code N
//! - `signal N`: kill itself with signal N (Unix)
//! - `fds`: print the open descriptor numbers, space-separated (Unix)
//! - `fd-target N`: print what descriptor N is (`/proc/self/fd/N`'s
//!   target, or `closed`) (Linux)
//! - `handles V...`: for each handle value, print `valid` or `invalid`
//!   (Windows)
//! - `sleep MS`: sleep, then exit 0
//! - `stderr TEXT`: write TEXT to stderr and `out` to stdout
//! - `env NAME`: print the variable's value (or `<unset>`)
//! - `args A...`: print each argument on a line of its own
//! - `cwd`: print the working directory
//! - `wrapper CODE MS`: start `echo-after MS` as a grandchild that inherits
//!   this process's stdio (and any other inheritable descriptor), then exit
//!   at once with CODE
//! - `echo-after MS`: sleep MS, then `echo`
//! - `head N`: read at most N bytes of stdin (one unbuffered read each
//!   time, so nothing beyond N is consumed), write them to stdout, exit 0
//!   leaving the rest of the input unread
//! - `flood-stderr N`: write N bytes to stderr, then `out` to stdout
//! - `close-stdin MS`: close stdin, write `closed` to stdout, sleep MS, exit 0
//! - `as-parent KIND CHECK`: act as a host program of umbilical;
//!   CHECK is `sigpipe-default` (SIGPIPE at SIG_DFL, then 10 MiB into a
//!   program that reads 10 bytes; prints the write's error kind) or
//!   `sigpipe-shim` (Linux: SIGPIPE at SIG_DFL, the shim killed, then
//!   `kill()`, which writes to the dead control stream; prints the
//!   outcomes), `closed-stdio` (fds 0-2 closed; on Windows the standard handles set to
//!   null; then a program inheriting the closed
//!   stderr must not get a descriptor of ours as fd 2, and a round trip; exit 0 on success,
//!   the failing step as the exit code otherwise); on every OS, `env-capture`
//!   (a variable set after the command was built and before it was
//!   spawned; prints what the program saw)
//! - `signal-storm N` (Linux): as a host with a handler for `SIGUSR1`,
//!   `SIGUSR2` ignored (and `SIGPIPE`, by the Rust runtime) and `SIGHUP` and
//!   `SIGINT` blocked, start N programs (every tenth by the fork fallback)
//!   while another thread aims `SIGUSR1` at this one; each program reports
//!   its signal state. Then a program started with `SIGINT` still blocked
//!   here is sent `SIGINT`. Prints `spawned=N clean=C kept=K handled=H
//!   sigint=S`: C programs saw no blocked, ignored or caught signal; K, H
//!   whether our own signal state is as before and the handler ran
//! - `shim-many N [runas]`: N sleeping programs and one quick one through
//!   the shim (with `runas`, on Windows: elevated, stderr relayed to ours);
//!   prints the threads they add, the quick one's status seen by
//!   `try_wait`, and how many of half of them `kill()` ended
//! - `clone-refused` (Linux): under a seccomp filter that refuses `clone`
//!   with `CLONE_VFORK`, with a descriptor open without close-on-exec,
//!   start `fds`, a program in a missing directory, and `exit 7`; prints
//!   `fds=.. path=.. cwd=.. exit=..`: the descriptors the first saw, the
//!   spawn path named afterwards, the second's error kind, the third's
//!   status
//! - `relay-stderr N [async]` (Windows): an elevated program writes N
//!   bytes to our stderr (relayed); prints its output and status once
//!   `wait()` (the async one with `async`) returns, then exits at once
//! - `leave-prober CODE|stay MS`: leave `probe MS` on our stdout and stderr,
//!   then exit CODE (or sleep until killed)
//! - `probe MS`: a byte to stdout and stderr every millisecond for MS ms
//! - `parent-dies`: start `sleep 60000` with `kill_on_parent_death` from a
//!   thread that ends, print its pid and `thread-ended`, sleep
//! - `ctrl-break CODE` (Windows): exit CODE on CTRL_BREAK_EVENT; `ready`
//! - `window CODE` (Windows): a window that exits CODE on WM_CLOSE; `ready`
//! - `pipe-stranger NAME FILE` (Windows): connect to the named pipe NAME as
//!   a stranger, read, and write to FILE `refused` if the connection was
//!   closed with nothing sent, else `answered`
//!
//! As a shim (`shim --umbilical-rendezvous NAME`) on Windows, with
//! `UMBILICAL_TEST_STRANGER_FIRST=FILE` in the environment, it first runs
//! `pipe-stranger NAME FILE` as a child and waits for it, so that a
//! stranger is the first to reach the rendezvous.

use std::io::{self, Read, Write};
use std::time::Duration;

fn main() {
    // The helper doubles as a shim for the launcher tests.
    #[cfg(windows)]
    stranger_first();
    umbilical::shim::run_if_invoked();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let num = |i: usize| -> u64 { arg(i).parse().unwrap_or_else(|_| die(&format!("bad number {:?}", arg(i)))) };
    match arg(0) {
        "echo" => echo(),
        // Echo until EOF, then exit with CODE.
        "echo-exit" => {
            echo();
            std::process::exit(num(1) as i32)
        }
        // Unix: the user it runs as (by name) and its parent's pid.
        #[cfg(unix)]
        "who" => {
            let uid = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines().find_map(|l| {
                        l.strip_prefix("Uid:").map(|r| r.split_whitespace().next().unwrap_or("").to_string())
                    })
                })
                .unwrap_or_else(|| die("no Uid in /proc/self/status"));
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            let name = passwd
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
                })
                .unwrap_or(uid);
            println!("{name}\n{}", std::os::unix::process::parent_id());
        }
        "count" => {
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            let mut stdin = io::stdin().lock();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => die(&format!("read: {e}")),
                }
            }
            println!("{total}");
        }
        "exit" => std::process::exit(num(1) as i32),
        "signal" => kill_self(num(1) as i32),
        #[cfg(unix)]
        "fd-target" => match std::fs::read_link(format!("/proc/self/fd/{}", num(1))) {
            Ok(target) => println!("{}", target.display()),
            Err(_) => println!("closed"),
        },
        "fds" => println!("{}", open_fds().iter().map(u32::to_string).collect::<Vec<_>>().join(" ")),
        "handles" => {
            let states: Vec<&str> = args[1..]
                .iter()
                .map(|v| v.parse::<usize>().unwrap_or_else(|_| die(&format!("bad handle value {v:?}"))))
                .map(|v| if handle_is_valid(v) { "valid" } else { "invalid" })
                .collect();
            println!("{}", states.join(" "));
        }
        "sleep" => std::thread::sleep(Duration::from_millis(num(1))),
        // Starts N `sleep 60` children and drops them running; prints the
        // threads this process has then, kills the children, and prints
        // how many are left unreaped after a bounded wait.
        #[cfg(target_os = "linux")]
        "drop-many" => drop_many(num(1) as usize),
        // Starts N children through the shim (this binary) and keeps them
        // running; prints the threads this process has then, and more as
        // it ends them (see `shim_many`).
        #[cfg(any(target_os = "linux", windows))]
        "shim-many" => shim_many(num(1) as usize, arg(2) == "runas"),
        #[cfg(windows)]
        "relay-stderr" => relay_stderr(num(1), arg(2) == "async"),
        #[cfg(target_os = "linux")]
        "signal-storm" => signal_storm(num(1) as usize),
        #[cfg(target_os = "linux")]
        "clone-refused" => clone_refused(),
        // A caller of the library in a container: starts `sleep 60000` in
        // container C of ENGINE (docker or podman) through the static shim
        // SHIM copied in, and waits to be killed.
        #[cfg(unix)]
        "shimmed-in" => {
            let engine = if arg(1) == "docker" { umbilical::Engine::Docker } else { umbilical::Engine::Podman };
            let mut cmd = umbilical::Command::new("sleep");
            cmd.arg("60000")
                .launcher(umbilical::Launcher::ContainerExec { engine, target: arg(2).into(), user: None })
                .shim(true)
                .shim_source(arg(3))
                .caller_gone_grace(Duration::from_millis(500));
            let _child = cmd.spawn().unwrap_or_else(|e| die(&format!("spawn in the container: {e}")));
            std::thread::sleep(Duration::from_secs(60));
        }
        // A caller of the library: starts `sleep 60000` through the shim
        // (this binary) with a caller-gone grace of GRACE_MS, prints the
        // program's pid, and waits to be killed.
        // A caller of a session through SPEC (a launcher spec) with grace
        // GRACE ms: starts N sleepers (and on Unix one that ignores
        // SIGTERM), prints their pids, the session's shim's and `ready`,
        // then sleeps (the test kills it).
        "session-parent" => {
            let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
            let launcher: umbilical::Launcher = arg(1).parse().unwrap_or_else(|e| die(&format!("{e}")));
            let session = umbilical::Session::builder(launcher)
                .shim_path(&me)
                .caller_gone_grace(Duration::from_millis(num(2)))
                .open()
                .unwrap_or_else(|e| die(&format!("open the session: {e}")));
            let mut children = Vec::new();
            for _ in 0..num(3) {
                children.push(session.command(&me).args(["sleep", "60000"]).spawn());
            }
            #[cfg(unix)]
            {
                let stubborn = format!("trap '' TERM; exec '{}' sleep 60000", me.display());
                children.push(session.command("sh").args(["-c", &stubborn]).spawn());
            }
            for child in &children {
                let child = child.as_ref().unwrap_or_else(|e| die(&format!("spawn in the session: {e}")));
                println!("{}", child.id().unwrap_or(0));
            }
            println!("session {}", session.pid().unwrap_or(0));
            println!("ready");
            io::stdout().flush().unwrap_or_else(|e| die(&format!("flush: {e}")));
            std::thread::sleep(Duration::from_secs(60));
            drop(children);
        }
        "shimmed-parent" => {
            let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
            let mut cmd = umbilical::Command::new(&me);
            cmd.args(["sleep", "60000"]).shim(true).shim_path(&me).caller_gone_grace(Duration::from_millis(num(1)));
            let child = cmd.spawn().unwrap_or_else(|e| die(&format!("spawn through the shim: {e}")));
            println!("{}", child.id().unwrap_or(0));
            io::stdout().flush().unwrap_or_else(|e| die(&format!("flush: {e}")));
            std::thread::sleep(Duration::from_secs(60));
            drop(child);
        }
        "stderr" => {
            eprint!("{}", arg(1));
            print!("out");
        }
        "env" => println!("{}", std::env::var(arg(1)).unwrap_or_else(|_| "<unset>".into())),
        "args" => {
            for a in std::env::args_os().skip(2) {
                println!("{}", a.to_string_lossy());
            }
        }
        "cwd" => println!("{}", std::env::current_dir().unwrap().display()),
        "wrapper" => {
            let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
            // std's Command passes on fds 0..2 and every descriptor not
            // marked close-on-exec (such as a lifeline), like a shell would.
            std::process::Command::new(me)
                .args(["echo-after", arg(2)])
                .spawn()
                .unwrap_or_else(|e| die(&format!("spawn grandchild: {e}")));
            std::process::exit(num(1) as i32);
        }
        "head" => {
            let want = num(1) as usize;
            let mut input = raw_stdin();
            let mut got = Vec::with_capacity(want);
            let mut buf = vec![0u8; want];
            while got.len() < want {
                match input.read(&mut buf[..want - got.len()]) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => die(&format!("read: {e}")),
                }
            }
            io::stdout().write_all(&got).unwrap_or_else(|e| die(&format!("write: {e}")));
        }
        "flood" => {
            // N bytes to stdout, whether anybody reads them or not.
            let chunk = vec![b'o'; 64 * 1024];
            let mut left = num(1) as usize;
            let mut stdout = io::stdout().lock();
            while left > 0 {
                let n = left.min(chunk.len());
                if stdout.write_all(&chunk[..n]).is_err() {
                    std::process::exit(3);
                }
                left -= n;
            }
        }
        "flood-stderr" => {
            let chunk = vec![b'e'; 64 * 1024];
            let mut left = num(1) as usize;
            let mut stderr = io::stderr().lock();
            while left > 0 {
                let n = left.min(chunk.len());
                stderr.write_all(&chunk[..n]).unwrap_or_else(|_| std::process::exit(102));
                left -= n;
            }
            print!("out");
        }
        "close-stdin" => {
            umbilical_tests::sys::close_stdin();
            print!("closed");
            io::stdout().flush().unwrap_or_else(|e| die(&format!("flush: {e}")));
            std::thread::sleep(Duration::from_millis(num(1)));
        }
        // Leaves `probe MS` running on our stdout and stderr, then exits
        // with CODE (or, with `stay`, sleeps until killed): Go's
        // `startHang` with `-subsleep -probe`.
        "leave-prober" => {
            let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
            std::process::Command::new(me)
                .args(["probe", arg(2)])
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| die(&format!("spawn the prober: {e}")));
            if arg(1) == "stay" {
                std::thread::sleep(Duration::from_secs(60));
            }
            std::process::exit(arg(1).parse().unwrap_or(0));
        }
        // A byte to stdout and to stderr every millisecond for MS ms, or
        // until nobody reads one of them.
        "probe" => {
            let until = std::time::Instant::now() + Duration::from_millis(num(1));
            while std::time::Instant::now() < until {
                if io::stdout().write_all(b".").and_then(|()| io::stdout().flush()).is_err()
                    || io::stderr().write_all(b".").is_err()
                {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // A caller of the library: starts `sleep 60000` (this helper) with
        // `kill_on_parent_death` from a thread that then ends, prints the
        // program's pid and `thread-ended`, and sleeps until killed.
        "parent-dies" => {
            let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
            let child = std::thread::spawn(move || {
                umbilical::Command::new(&me)
                    .args(["sleep", "60000"])
                    .kill_on_parent_death(true)
                    .spawn()
                    .unwrap_or_else(|e| die(&format!("spawn with kill_on_parent_death: {e}")))
            })
            .join()
            .unwrap_or_else(|_| die("the spawning thread panicked"));
            println!("{}", child.id().unwrap_or(0));
            println!("thread-ended");
            io::stdout().flush().unwrap_or_else(|e| die(&format!("flush: {e}")));
            std::thread::sleep(Duration::from_secs(60));
            drop(child);
        }
        // Windows: exits CODE on CTRL_BREAK_EVENT; prints `ready` once the
        // handler is in place.
        #[cfg(windows)]
        "ctrl-break" => {
            if !umbilical_tests::sys::exit_on_ctrl_break(num(1) as i32) {
                die("SetConsoleCtrlHandler failed");
            }
            println!("ready");
            io::stdout().flush().unwrap_or_else(|e| die(&format!("flush: {e}")));
            std::thread::sleep(Duration::from_secs(60));
        }
        // Windows: a top-level window; WM_CLOSE exits CODE. Prints `ready`
        // once it exists, or `no-window: WHY`.
        #[cfg(windows)]
        "window" => {
            let why = umbilical_tests::sys::window_until_closed(num(1) as i32, || {
                println!("ready");
                let _ = io::stdout().flush();
            });
            println!("no-window: {why}");
        }
        "as-parent" => as_parent(arg(1), arg(2)),
        "echo-after" => {
            std::thread::sleep(Duration::from_millis(num(1)));
            echo();
        }
        #[cfg(unix)]
        "squat" => squat(std::path::Path::new(arg(1)), num(2)),
        #[cfg(windows)]
        "pipe-stranger" => {
            let verdict = match std::fs::OpenOptions::new().read(true).write(true).open(arg(1)) {
                Ok(mut pipe) => match pipe.read(&mut [0u8; 64]) {
                    Ok(0) | Err(_) => "refused",
                    Ok(_) => "answered",
                },
                Err(e) => die(&format!("the stranger could not connect: {e}")),
            };
            std::fs::write(arg(2), verdict).unwrap_or_else(|e| die(&format!("write {}: {e}", arg(2))));
        }
        other => die(&format!("unknown sub-command {other:?}")),
    }
}

/// A hostile local user against every rendezvous it can find under BASE,
/// for at most MS milliseconds or until its stdin closes: it tries to
/// rename, unlink and replace the socket, to plant a file beside it, to
/// rename the directory, and to connect first with a forged hello. Prints
/// `seen DIR` for each rendezvous met, then the count of every try that
/// worked.
#[cfg(unix)]
fn squat(base: &std::path::Path, ms: u64) {
    use std::os::unix::net::{UnixListener, UnixStream};
    let end = std::time::Instant::now() + Duration::from_millis(ms);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let _ = io::stdin().read(&mut [0u8; 1]);
        flag.store(true, std::sync::atomic::Ordering::Release);
    });
    let (mut seen, mut renamed, mut unlinked, mut replaced, mut planted, mut moved, mut connected, mut answered) =
        (0, 0, 0, 0, 0, 0, 0, 0);
    let mut met = std::collections::HashSet::new();
    let hello = umbilical::protocol::encode(&umbilical::protocol::Message::Hello {
        shim_pid: std::process::id(),
        token: vec![0; 16],
    });
    while std::time::Instant::now() < end && !stop.load(std::sync::atomic::Ordering::Acquire) {
        for entry in std::fs::read_dir(base).into_iter().flatten().flatten() {
            if !entry.file_name().to_string_lossy().starts_with("umbilical-") {
                continue;
            }
            let dir = entry.path();
            let sock = dir.join("control.sock");
            if std::fs::symlink_metadata(&sock).is_err() {
                continue;
            }
            seen += 1;
            if met.insert(dir.clone()) {
                println!("seen {}", dir.display());
                let _ = io::stdout().flush();
            }
            if let Ok(mut s) = UnixStream::connect(&sock) {
                connected += 1;
                let _ = s.write_all(&hello);
                let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                if matches!(s.read(&mut [0u8; 64]), Ok(n) if n > 0) {
                    answered += 1;
                }
            }
            if std::fs::rename(&sock, dir.join("stolen.sock")).is_ok() {
                renamed += 1;
            }
            if std::fs::remove_file(&sock).is_ok() {
                unlinked += 1;
            }
            if UnixListener::bind(&sock).is_ok() {
                replaced += 1;
            }
            if std::fs::write(dir.join("planted"), b"x").is_ok() {
                planted += 1;
            }
            let mut away = dir.clone().into_os_string();
            away.push("-moved");
            if std::fs::rename(&dir, &away).is_ok() {
                moved += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!(
        "seen={seen} renamed={renamed} unlinked={unlinked} replaced={replaced} planted={planted} moved={moved} connected={connected} answered={answered}"
    );
}

#[cfg(target_os = "linux")]
fn drop_many(n: usize) {
    let mut pids = Vec::new();
    for _ in 0..n {
        let child = umbilical::Command::new("sleep").arg("60").spawn().unwrap_or_else(|e| die(&format!("spawn: {e}")));
        pids.push(child.id().unwrap_or(0));
    }
    // Dropped above, each while running.
    println!("threads={}", umbilical_tests::sys::thread_count());
    for pid in &pids {
        let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
    }
    left_children(Duration::from_secs(20));
}

/// Issue #11/#13: no thread per child through the shim in the blocking API.
/// Starts `n` sleepers through the shim and one program that exits 3 at
/// once, then prints `threads=` (all running) and `added=` (more than
/// before them), `early=` (the quick one's status, read by `try_wait`
/// without any wait before: the background reader had it), kills half
/// with `kill()` and waits for them (`killed=`, each `Signaled(9)`; on
/// Windows the shim's `TerminateProcess` gives `Exited(1)`), drops the
/// other half running with `kill_on_drop` (`threads_after=`), and on Linux
/// prints how many processes of its own are left after a bounded wait
/// (`left=`).
#[cfg(any(target_os = "linux", windows))]
fn shim_many(n: usize, runas: bool) {
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    let start = |args: &[&str]| {
        let mut cmd = umbilical::Command::new(&me);
        cmd.args(args).shim(true).shim_path(&me).kill_on_drop(true);
        if runas {
            // Elevated, with our stderr inherited: relayed to it.
            cmd.launcher(umbilical::Launcher::RunAs).stderr(umbilical::Stderr::Inherit);
        }
        cmd.spawn().unwrap_or_else(|e| die(&format!("spawn through the shim: {e}")))
    };
    let threads = umbilical_tests::sys::thread_count;
    let before = threads();
    let mut sleepers: Vec<_> = (0..n).map(|_| start(&["sleep", "60000"])).collect();
    let mut quick = start(&["exit", "3"]);
    let alive = threads();
    println!("threads={alive}");
    println!("added={}", alive.saturating_sub(before));
    let t0 = std::time::Instant::now();
    let early = loop {
        match quick.try_wait() {
            Ok(Some(exit)) => break format!("{:?}", exit.status),
            Ok(None) if t0.elapsed() < Duration::from_secs(20) => std::thread::sleep(Duration::from_millis(10)),
            other => break format!("none: {other:?}"),
        }
    };
    println!("early={early}");
    let rest = sleepers.split_off(n / 2);
    let mut killed = 0;
    for mut child in sleepers {
        child.kill().unwrap_or_else(|e| die(&format!("kill: {e}")));
        let status = child.wait().unwrap_or_else(|e| die(&format!("wait: {e}")));
        let killed_status =
            if cfg!(windows) { umbilical::ExitStatus::Exited(1) } else { umbilical::ExitStatus::Signaled(9) };
        if status.status == killed_status {
            killed += 1;
        } else {
            println!("unexpected status {status:?}");
        }
    }
    println!("killed={killed}");
    drop(rest);
    println!("threads_after={}", threads());
    #[cfg(target_os = "linux")]
    left_children(Duration::from_secs(30));
}

/// Prints how many processes of this one's are left after waiting at most
/// `bound` for them to go (`left=`).
#[cfg(target_os = "linux")]
fn left_children(bound: Duration) {
    let me = std::process::id().to_string();
    let ours = || {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
                let parent = stat.rfind(')').and_then(|i| stat[i + 2..].split_whitespace().nth(1).map(str::to_owned));
                parent.as_deref() == Some(me.as_str())
            })
            .count()
    };
    let t0 = std::time::Instant::now();
    while ours() > 0 && t0.elapsed() < bound {
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("left={}", ours());
}

fn echo() {
    let mut buf = vec![0u8; 64 * 1024];
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => stdout.write_all(&buf[..n]).unwrap_or_else(|e| die(&format!("write: {e}"))),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => die(&format!("read: {e}")),
        }
        stdout.flush().unwrap_or_else(|e| die(&format!("flush: {e}")));
    }
}

/// See the module docs: a stranger reaches the rendezvous before the shim.
#[cfg(windows)]
fn stranger_first() {
    let Some(file) = std::env::var_os("UMBILICAL_TEST_STRANGER_FIRST").filter(|f| !f.is_empty()) else { return };
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() != 4 || args[1] != "shim" {
        return;
    }
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    let status = std::process::Command::new(me)
        .arg("pipe-stranger")
        .arg(&args[3])
        .arg(file)
        .env_remove("UMBILICAL_TEST_STRANGER_FIRST")
        .status()
        .unwrap_or_else(|e| die(&format!("start the stranger: {e}")));
    if !status.success() {
        die("the stranger failed");
    }
}

/// Stdin without std's buffer, so a read takes no more than it asks for.
fn raw_stdin() -> std::fs::File {
    #[cfg(unix)]
    let owned = std::os::fd::AsFd::as_fd(&io::stdin()).try_clone_to_owned();
    #[cfg(windows)]
    let owned = std::os::windows::io::AsHandle::as_handle(&io::stdin()).try_clone_to_owned();
    std::fs::File::from(owned.unwrap_or_else(|e| die(&format!("duplicate stdin: {e}"))))
}

/// A host program of umbilical in a state a test process cannot safely put
/// itself in; see the module docs.
fn as_parent(kind: &str, check: &str) {
    let kind = match kind {
        "socket" => umbilical::ChannelKind::Socket,
        "shared" => umbilical::ChannelKind::SharedSocket,
        "pipes" => umbilical::ChannelKind::Pipes,
        other => die(&format!("bad channel kind {other:?}")),
    };
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    match check {
        "env-capture" => {
            // Built before the variable exists, spawned after: the program
            // sees the environment of the moment of spawning.
            let mut cmd = umbilical::Command::new(&me);
            cmd.args(["env", "UMBILICAL_CAPTURED"]).channel_kind(kind);
            umbilical_tests::sys::set_env_single_threaded("UMBILICAL_CAPTURED", "at-spawn");
            let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("spawn: {e}")));
            let mut channel = child.take_channel().unwrap();
            let _ = channel.shutdown_write();
            let mut out = String::new();
            channel.read_to_string(&mut out).unwrap_or_else(|e| die(&format!("read: {e}")));
            let _ = child.wait();
            print!("{out}");
        }
        #[cfg(target_os = "linux")]
        "sigpipe-shim" => {
            // SIGPIPE at its default, the shim killed, then a kill request
            // sent over the control stream whose other end is gone.
            umbilical_tests::sys::default_sigpipe().unwrap_or_else(|e| die(&format!("signal: {e}")));
            let mut child = umbilical::Command::new(&me)
                .args(["sleep", "20000"])
                .channel_kind(kind)
                .shim(true)
                .shim_path(&me)
                .spawn()
                .unwrap_or_else(|e| die(&format!("spawn: {e}")));
            let program = child.id().unwrap();
            let stat = std::fs::read_to_string(format!("/proc/{program}/stat")).unwrap_or_default();
            let shim: i32 = stat
                .rfind(')')
                .and_then(|i| stat[i + 2..].split_whitespace().nth(1))
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| die("no parent of the program in /proc"));
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(shim).unwrap_or_else(|| die("bad shim pid")),
                rustix::process::Signal::KILL,
            );
            std::thread::sleep(Duration::from_millis(200));
            let killed = child.kill();
            let exit = child.wait();
            println!("kill: {:?}; wait: {:?}", killed.map_err(|e| e.kind()), exit.map(|e| e.status));
        }
        #[cfg(unix)]
        "sigpipe-default" | "sigpipe-default-guard" => {
            umbilical_tests::sys::default_sigpipe().unwrap_or_else(|e| die(&format!("signal: {e}")));
            if check == "sigpipe-default-guard" {
                umbilical::force_sigpipe_guard();
            }
            let mut child = umbilical::Command::new(&me)
                .args(["head", "10"])
                .channel_kind(kind)
                .spawn()
                .unwrap_or_else(|e| die(&format!("spawn: {e}")));
            let mut channel = child.take_channel().unwrap();
            let big = vec![b'x'; 10 * 1024 * 1024];
            let outcome = match channel.write_all(&big) {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("{:?}", e.kind()),
            };
            let mut out = Vec::new();
            let read = channel.read_to_end(&mut out).map(|_| out.len());
            let _ = child.wait();
            println!("write: {outcome}; read: {read:?}");
        }
        "closed-stdio" => {
            umbilical_tests::sys::close_stdio();
            // Inheriting a closed stderr: the program must not get one of
            // our channel's descriptors that took number 2.
            #[cfg(unix)]
            {
                let Ok(mut lister) = umbilical::Command::new(&me).args(["fd-target", "2"]).channel_kind(kind).spawn()
                else {
                    std::process::exit(20)
                };
                let mut listing = String::new();
                let Some(mut channel) = lister.take_channel() else { std::process::exit(21) };
                if channel.shutdown_write().is_err() || channel.read_to_string(&mut listing).is_err() {
                    std::process::exit(22);
                }
                // Closed, or /dev/null where the Rust runtime of the program
                // filled the gap at its start; never a socket or pipe of ours.
                if !matches!(listing.trim(), "closed" | "/dev/null") {
                    std::process::exit(23);
                }
            }
            let mut child = match umbilical::Command::new(&me).arg("echo").channel_kind(kind).spawn() {
                Ok(c) => c,
                Err(_) => std::process::exit(10),
            };
            // The host prints to its (closed) stdout: that must not land in
            // a channel descriptor that took number 1.
            let _ = io::stdout().write_all(b"host noise");
            let _ = io::stdout().flush();
            let mut channel = child.take_channel().unwrap();
            if channel.write_all(b"through closed stdio").is_err() {
                std::process::exit(11);
            }
            if channel.shutdown_write().is_err() {
                std::process::exit(12);
            }
            let mut out = Vec::new();
            if channel.read_to_end(&mut out).is_err() {
                std::process::exit(13);
            }
            if out != b"through closed stdio" {
                std::process::exit(14);
            }
            match child.wait() {
                Ok(exit) if exit.success() => std::process::exit(0),
                _ => std::process::exit(15),
            }
        }
        other => die(&format!("bad check {other:?}")),
    }
}

fn die(msg: &str) -> ! {
    eprintln!("umbilical-test-helper: {msg}");
    std::process::exit(101)
}

#[cfg(unix)]
fn kill_self(sig: i32) -> ! {
    let sig = rustix::process::Signal::from_named_raw(sig).unwrap_or_else(|| die(&format!("bad signal {sig}")));
    let _ = rustix::process::kill_process(rustix::process::getpid(), sig);
    std::thread::sleep(Duration::from_secs(10));
    die("still alive after signalling itself")
}

/// The descriptors open in this process, leaving out the one used to list
/// them.
#[cfg(unix)]
fn open_fds() -> Vec<u32> {
    let dir = if cfg!(target_os = "linux") { "/proc/self/fd" } else { "/dev/fd" };
    let mut fds: Vec<u32> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| die(&format!("{dir}: {e}")))
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let fd: u32 = entry.file_name().to_str()?.parse().ok()?;
            // The directory stream itself shows up as an entry whose
            // target is the listing directory.
            match std::fs::read_link(entry.path()) {
                Ok(target) if target.to_string_lossy().contains("/fd") && !target.to_string_lossy().contains(':') => {
                    if std::fs::metadata(&target).map(|m| m.is_dir()).unwrap_or(false) {
                        None
                    } else {
                        Some(fd)
                    }
                }
                Ok(_) => Some(fd),
                Err(_) => None, // closed while listing: it was the stream
            }
        })
        .collect();
    fds.sort_unstable();
    fds
}

#[cfg(windows)]
fn kill_self(_sig: i32) -> ! {
    die("signals are Unix-only")
}

#[cfg(windows)]
fn open_fds() -> Vec<u32> {
    die("`fds` is Unix-only; use `handles`")
}

#[cfg(windows)]
fn handle_is_valid(value: usize) -> bool {
    umbilical_tests::sys::handle_is_valid(value)
}

#[cfg(unix)]
fn handle_is_valid(_value: usize) -> bool {
    die("`handles` is Windows-only; use `fds`")
}

/// `signal-storm N`: see the module docs.
#[cfg(target_os = "linux")]
fn signal_storm(n: usize) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use umbilical_tests::sys;
    sys::busy_signal_state().unwrap_or_else(|e| die(&format!("signal state: {e}")));
    let before = sys::signal_snapshot();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let main_thread = sys::this_thread();
    let sender = std::thread::spawn({
        let stop = stop.clone();
        // Bounded: at most a million signals, fewer once the spawns end.
        move || {
            for _ in 0..1_000_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                sys::send_usr1(main_thread);
                std::thread::yield_now();
            }
        }
    });
    let mut clean = 0;
    for i in 0..n {
        let mut child = umbilical::Command::new("cat")
            .arg("/proc/self/status")
            .force_fork_exec(i % 10 == 9)
            .spawn()
            .unwrap_or_else(|e| die(&format!("spawn {i}: {e}")));
        let mut channel = child.take_channel().unwrap();
        let _ = channel.shutdown_write();
        let mut out = String::new();
        channel.read_to_string(&mut out).unwrap_or_else(|e| die(&format!("read {i}: {e}")));
        let status = child.wait().unwrap_or_else(|e| die(&format!("wait {i}: {e}")));
        let zero =
            |name: &str| out.lines().any(|l| l.strip_prefix(name).is_some_and(|v| v.trim().bytes().all(|b| b == b'0')));
        if status.success() && zero("SigBlk:") && zero("SigIgn:") && zero("SigCgt:") {
            clean += 1;
        } else {
            eprintln!("program {i}: {status:?}\n{out}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap_or_else(|_| die("the signal sender panicked"));
    let kept = sys::signal_snapshot() == before;
    // Rust std's `test_process_mask` (library/std/src/sys/process/unix/
    // common/tests.rs): SIGINT blocked in the parent, the program still
    // dies of it.
    let mut sleeper = umbilical::Command::new(std::env::current_exe().unwrap())
        .args(["sleep", "20000"])
        .spawn()
        .unwrap_or_else(|e| die(&format!("spawn the sleeper: {e}")));
    let _ = sleeper.signal(libc::SIGINT);
    let sigint = sleeper.wait().map(|s| format!("{:?}", s.status)).unwrap_or_else(|e| format!("{e}"));
    println!("spawned={n} clean={clean} kept={kept} handled={} sigint={sigint}", sys::usr1_seen() > 0);
}

/// `relay-stderr N [async]` (Windows): through UAC elevation with our
/// stderr inherited (relayed, since an elevated program cannot inherit it),
/// the program writes N bytes to stderr; prints its output and status as
/// soon as `wait()` returns (the async one with `async`), and exits at
/// once.
#[cfg(windows)]
fn relay_stderr(n: u64, use_async: bool) {
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    let mut cmd = umbilical::Command::new(&me);
    cmd.args(["flood-stderr", &n.to_string()])
        .launcher(umbilical::Launcher::RunAs)
        .shim_path(&me)
        .stderr(umbilical::Stderr::Inherit);
    let (out, status) = if use_async {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| die(&format!("runtime: {e}")));
        rt.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut child = cmd.spawn_async().await.unwrap_or_else(|e| die(&format!("spawn through runas: {e}")));
            let mut channel = child.take_channel().unwrap();
            let _ = channel.shutdown().await;
            let mut out = String::new();
            let _ = channel.read_to_string(&mut out).await;
            let status = child.wait().await.unwrap_or_else(|e| die(&format!("wait: {e}")));
            // At once, from inside the runtime, as a host would.
            println!("out={out} status={:?}", status.status);
            std::process::exit(0)
        })
    } else {
        let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("spawn through runas: {e}")));
        let mut channel = child.take_channel().unwrap();
        let _ = channel.shutdown_write();
        let mut out = String::new();
        let _ = channel.read_to_string(&mut out);
        (out, child.wait().unwrap_or_else(|e| die(&format!("wait: {e}"))))
    };
    println!("out={out} status={:?}", status.status);
    std::process::exit(0);
}

/// `clone-refused`: see the module docs.
#[cfg(target_os = "linux")]
fn clone_refused() {
    use std::os::fd::AsFd;
    let leaky = std::fs::File::open("/dev/null").unwrap_or_else(|e| die(&format!("open: {e}")));
    rustix::io::fcntl_setfd(leaky.as_fd(), rustix::io::FdFlags::empty())
        .unwrap_or_else(|e| die(&format!("fcntl: {e}")));
    umbilical_tests::sys::refuse_vfork_clone().unwrap_or_else(|e| die(&format!("seccomp: {e}")));
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("current_exe: {e}")));
    let mut lister = umbilical::Command::new(&me).arg("fds").spawn().unwrap_or_else(|e| die(&format!("spawn: {e}")));
    let mut channel = lister.take_channel().unwrap();
    let _ = channel.shutdown_write();
    let mut fds = String::new();
    let _ = channel.read_to_string(&mut fds);
    let _ = lister.wait();
    let cwd = match umbilical::Command::new(&me).arg("exit").arg("0").current_dir("/nonexistent-umbilical").spawn() {
        Ok(_) => "started".to_string(),
        Err(e) => format!("{:?}", e.kind()),
    };
    let exit = match umbilical::Command::new(&me).args(["exit", "7"]).spawn() {
        Ok(mut c) => c.wait().map(|e| format!("{:?}", e.status)).unwrap_or_else(|e| format!("{e}")),
        Err(e) => format!("{e}"),
    };
    println!("fds={} path={} cwd={cwd} exit={exit}", fds.trim(), umbilical::mechanisms::spawn());
    drop(leaky);
}
