//! `umbilical run`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use umbilical::{ChannelKind, Child, ErrorKind, ExitDetection, ExitStatus, Stderr};

use crate::relay::{from_program, to_program};
use crate::report::Report;

/// Exit code when `--timeout` expires, as `timeout(1)`.
const EXIT_TIMEOUT: i32 = 124;
/// Exit code for umbilical's own failures, as `env(1)`.
const EXIT_FAILURE: i32 = 125;

#[derive(Args)]
pub struct RunArgs {
    /// Where the program's stderr goes.
    #[arg(long, value_enum, default_value_t = StderrArg::Inherit)]
    stderr: StderrArg,
    /// How to decide that the program is done: `process` waits for the
    /// process started; `lifeline` for every process holding the lifeline
    /// (fd 3); `channel` until the program's side of the channel closes;
    /// `auto` picks the best the launcher allows (process for a direct
    /// start or a launcher that returns the status; lifeline or channel for
    /// one that detaches). With --shim the shim reports the end.
    #[arg(long, value_enum, default_value_t = WaitArg::Auto)]
    wait: WaitArg,
    /// socket: a socketpair per direction (default); shared-socket: one
    /// socket on both fd 0 and fd 1 (inetd-style programs); pipes: two
    /// pipes, for programs that dislike a socket on stdin. Windows always
    /// uses two named pipes.
    #[arg(long, value_enum, default_value_t = ChannelArg::Socket)]
    channel: ChannelArg,
    /// Kill the program after this many seconds (fractions allowed) and
    /// exit 124.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// Start the program through a launcher: direct (default), sudo[:USER],
    /// doas[:USER], pkexec[:USER], runuser:USER, su:USER,
    /// ssh:[USER@]HOST[:PORT], docker:CONTAINER, podman:CONTAINER,
    /// kubectl:[NAMESPACE/]POD, runas (Windows UAC elevation, always
    /// through the shim), or custom:PROGRAM[,ARG...] (an argv prefix).
    #[arg(long, value_name = "SPEC", default_value = "direct")]
    via: String,
    /// With --via custom:...: the launcher exits at once, leaving the program
    /// running; its exit is never taken for the program's.
    #[arg(long)]
    detaches: bool,
    /// Start the program through the shim (this binary, or --shim-path):
    /// exact status through any launcher, launcher refusals told apart from
    /// the program's exit codes, kill across privilege boundaries. On
    /// Windows with no launcher or with runas; on Unix with any launcher but
    /// container exec.
    #[arg(long)]
    shim: bool,
    /// The shim program to use with --shim (default: this binary).
    #[arg(long, value_name = "PATH")]
    shim_path: Option<PathBuf>,
    /// Write a JSON report to FILE at the end: status, how the end was
    /// detected, pid and byte counts.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The program and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "PROGRAM")]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, ValueEnum)]
enum StderrArg {
    Inherit,
    Null,
    Merge,
}

#[derive(Clone, Copy, ValueEnum)]
enum WaitArg {
    Auto,
    Process,
    Lifeline,
    Channel,
}

#[derive(Clone, Copy, ValueEnum)]
enum ChannelArg {
    Socket,
    SharedSocket,
    Pipes,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("the timeout must be a positive number of seconds, not {s}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Copy progress shared with the relay threads.
#[derive(Default)]
struct Counts {
    to_child: AtomicU64,
    from_child: AtomicU64,
}

/// Runs the program; returns the exit code for umbilical.
pub fn run(args: RunArgs) -> i32 {
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let launcher = match crate::via::parse(&args.via, args.detaches) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("umbilical: {e}");
            return EXIT_FAILURE;
        }
    };
    let mut cmd = umbilical::Command::new(&args.command[0]);
    cmd.args(&args.command[1..])
        .stderr(match args.stderr {
            StderrArg::Inherit => Stderr::Inherit,
            StderrArg::Null => Stderr::Null,
            StderrArg::Merge => Stderr::Merge,
        })
        .exit_detection(match args.wait {
            WaitArg::Auto => ExitDetection::Auto,
            WaitArg::Process => ExitDetection::Process,
            WaitArg::Lifeline => ExitDetection::Lifeline,
            WaitArg::Channel => ExitDetection::ChannelClosed,
        })
        .channel_kind(match args.channel {
            ChannelArg::Socket => ChannelKind::Socket,
            ChannelArg::SharedSocket => ChannelKind::SharedSocket,
            ChannelArg::Pipes => ChannelKind::Pipes,
        })
        .launcher(launcher)
        .shim(args.shim);
    if let Some(path) = &args.shim_path {
        cmd.shim_path(path);
    }
    // On Windows the program runs in a kill-on-close job, so that --timeout
    // (and umbilical dying) ends what it started too, not only itself.
    #[cfg(windows)]
    cmd.kill_on_close_job(true);
    let counts = Arc::new(Counts::default());
    let mut report = Report { exit: None, pid: None, bytes_to_child: 0, bytes_from_child: 0, error: None };

    let code = match cmd.spawn() {
        Err(err) => {
            eprintln!("umbilical: {err}");
            report.error = Some(err.to_string());
            match err.kind() {
                ErrorKind::NotFound => 127,
                ErrorKind::NotExecutable => 126,
                _ => EXIT_FAILURE,
            }
        }
        Ok(child) => match supervise(child, deadline, &counts, &mut report) {
            Ok(code) => code,
            Err(err) => {
                eprintln!("umbilical: {err}");
                report.error = Some(err.to_string());
                EXIT_FAILURE
            }
        },
    };
    report.bytes_to_child = counts.to_child.load(Ordering::Relaxed);
    report.bytes_from_child = counts.from_child.load(Ordering::Relaxed);
    if let Some(path) = &args.report
        && let Err(e) = report.write(path)
    {
        eprintln!("umbilical: cannot write the report to {}: {e}", path.display());
        return EXIT_FAILURE;
    }
    code
}

/// Relays both directions, waits for the end, and returns the exit code.
fn supervise(
    mut child: Child,
    deadline: Option<Instant>,
    counts: &Arc<Counts>,
    report: &mut Report,
) -> io::Result<i32> {
    report.pid = child.id();
    let (reader, writer) = child.take_channel().expect("a fresh child has its channel").split();

    // stdin -> program. Not joined: umbilical's stdin may never end (a
    // terminal), and the program may finish without reading it all.
    let c = counts.clone();
    let feed = to_program(writer, move |n| {
        c.to_child.fetch_add(n, Ordering::Relaxed);
    })?;
    std::thread::Builder::new().name("stdin-to-program".into()).spawn(feed)?;

    // program -> stdout, until the channel closes in every holder.
    let (done_tx, done_rx) = mpsc::channel();
    let c = counts.clone();
    let drain = from_program(reader, move |n| {
        c.from_child.fetch_add(n, Ordering::Relaxed);
    })?;
    std::thread::Builder::new().name("program-to-stdout".into()).spawn(move || {
        let _ = done_tx.send(drain());
    })?;

    let timed_out = |child: &mut Child, report: &mut Report| -> io::Result<i32> {
        child.kill()?;
        report.exit = child.wait_timeout(Duration::from_secs(5))?;
        report.error = Some("timed out; the program was killed".into());
        eprintln!("umbilical: timed out; killed the program");
        Ok(EXIT_TIMEOUT)
    };

    let exit = match deadline {
        None => child.wait()?,
        Some(d) => match child.wait_timeout(d.saturating_duration_since(Instant::now()))? {
            Some(exit) => exit,
            None => return timed_out(&mut child, report),
        },
    };
    report.exit = Some(exit);

    // The program is done; deliver everything it wrote before exiting.
    let relay = match deadline {
        None => done_rx.recv().ok(),
        Some(d) => match done_rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
            Ok(r) => Some(r),
            Err(mpsc::RecvTimeoutError::Timeout) => return timed_out(&mut child, report),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
        },
    };
    if let Some(Err(e)) = relay
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("umbilical: copying the program's output: {e}");
    }
    let _ = io::stderr().flush();
    Ok(match exit.status {
        // Unix keeps the low 8 bits anyway; Windows passes all 32 on.
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled(sig) => 128 + sig,
        _ => 0,
    })
}
