//! `umbilical run`.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use umbilical::{ChannelKind, Child, ErrorKind, Exit, ExitDetection, ExitStatus, ShimLink, ShimMode, Stderr};

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
    /// Stop the program after this many seconds (fractions allowed) and
    /// exit 124: send it --signal, then SIGKILL after --kill-after if it is
    /// still running. A limit too large to represent means no limit.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    timeout: Option<Duration>,
    /// The signal --timeout sends first (a name such as TERM, INT, KILL,
    /// with or without SIG, or a number). Windows: the program is
    /// terminated whatever this says.
    #[arg(long, value_name = "SIG", default_value = "TERM", value_parser = crate::signals::parse)]
    signal: i32,
    /// With --timeout: if the program is still running this many seconds
    /// after --signal, kill it (SIGKILL). Without it, umbilical waits for
    /// the program after the signal, as timeout(1) does.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    kill_after: Option<Duration>,
    /// After the program exits, copy its output for at most this many
    /// seconds more, then stop and exit with the program's status; the
    /// report then says "output_truncated": true. Default: until every
    /// holder of the program's output (a background child of it too) has
    /// closed it, as a shell's command substitution waits.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    drain: Option<Duration>,
    /// Keep the program in umbilical's process group (Unix), as timeout(1)
    /// --foreground: the terminal's signals reach it directly, and signals
    /// (a timeout's too) go to the program alone, not to its children. By
    /// default it leads a group of its own, and umbilical passes on
    /// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to
    /// that whole group.
    #[arg(long)]
    foreground: bool,
    /// Start the program through a launcher: direct (default), sudo[:USER],
    /// doas[:USER], pkexec[:USER], runuser:USER, su:USER,
    /// ssh:[USER@]HOST[:PORT], docker:[USER@]CONTAINER, podman:[USER@]CONTAINER,
    /// kubectl:[NAMESPACE/]POD, setpriv:USER[:GROUP] (root only, no PAM),
    /// nsenter:PID (root only: the namespaces of process PID),
    /// systemd-run[:USER], run0[:USER], flatpak-spawn (from a Flatpak, to
    /// the host), runas (Windows UAC elevation, always through the shim),
    /// or custom:PROGRAM[,ARG...] (an argv prefix). Given more than once,
    /// a chain, outer to inner: --via ssh:ops@db1 --via sudo:postgres runs
    /// the program as postgres on db1.
    #[arg(long, value_name = "SPEC", default_value = "direct")]
    via: Vec<String>,
    /// With --via custom:...: the launcher exits at once, leaving the program
    /// running; its exit is never taken for the program's.
    #[arg(long)]
    detaches: bool,
    /// Always start the program through the shim (this binary, or
    /// --shim-path): exact status through any launcher, launcher refusals
    /// told apart from the program's exit codes (125), kill across
    /// privilege boundaries, and the program ended if umbilical dies. By
    /// default the shim is used through every launcher where it can work:
    /// sudo, doas, pkexec, runuser and su (a copy where the target user
    /// cannot execute this binary), ssh (at the same path on the far host,
    /// at --shim-path, or a copy sent over ssh), container exec (a copy of
    /// the static shim this binary carries, or --shim-source, or one inside
    /// at --shim-path), and runas; not
    /// with no launcher or a custom launcher. -v and the report say what
    /// was chosen and why.
    #[arg(long, conflicts_with = "no_shim")]
    shim: bool,
    /// Never use the shim (runas still does): the launcher's own exit code
    /// is then taken for the program's.
    #[arg(long)]
    no_shim: bool,
    /// The shim program where the launcher runs it (default: this binary's
    /// path; through container exec, a shim already in the container).
    #[arg(long, value_name = "PATH")]
    shim_path: Option<PathBuf>,
    /// The shim on this host to copy into a container or to a far host
    /// that has none (default: the static shim this binary carries; see
    /// `umbilical doctor`). It must run there: a static build, such as the
    /// `umbilical` crate's `umbilical-shim` built with
    /// RUSTFLAGS="-C target-feature=+crt-static".
    #[arg(long, value_name = "PATH")]
    shim_source: Option<PathBuf>,
    /// How the shim's link reaches back: auto (a forwarded socket; in band
    /// through container exec), forwarded, or in-band (a second session of
    /// the launcher carries it: for ssh servers with
    /// AllowStreamLocalForwarding no).
    #[arg(long, value_enum, value_name = "HOW", default_value = "auto")]
    shim_link: ShimLinkArg,
    /// How long to wait for the shim to connect back and start the program
    /// (a password prompt included); then umbilical exits 125, or 124 when
    /// --timeout is what ran out.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value = "60")]
    connect_timeout: Duration,
    /// Who answers the launcher's password prompt (sudo, ssh): PROGRAM is
    /// run with the prompt as its only argument and prints the answer on
    /// stdout; a non-zero exit declines (the SUDO_ASKPASS/SSH_ASKPASS
    /// convention). umbilical relays the question through an askpass
    /// helper of its own (this binary), never through an argv, an
    /// environment or a file. Without it, umbilical asks on its
    /// controlling terminal (/dev/tty, echo off), since its stdin is the
    /// program's; with no terminal, a launcher that asks is refused at once
    /// (exit 125). su, doas and pkexec are not relayed yet.
    #[arg(long, value_name = "PROGRAM")]
    askpass: Option<OsString>,
    /// Say on stderr what umbilical decided (whether the shim is used, and
    /// why) and each phase with the time since start: the program started
    /// (pid), the shim connected and authenticated, a launcher still busy
    /// after a second (a password prompt looks like that), the end
    /// observed and how. -vv adds the launcher's argv and the rendezvous.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Write a JSON report to FILE at the end: status, how the end was
    /// detected, pid, byte counts, whether the output was cut short. FILE
    /// is created before anything starts, so an unwritable path fails
    /// first (exit 125), as GNU time -o does.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Set KEY to VALUE in the program's environment (repeatable). Through
    /// a launcher it is re-applied on the far side (launchers reset the
    /// environment).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_assignment)]
    env: Vec<(OsString, OsString)>,
    /// Remove KEY from the program's environment (repeatable).
    #[arg(long, value_name = "KEY")]
    env_remove: Vec<OsString>,
    /// Start the program with an empty environment, plus what --env sets
    /// (as `env -i`).
    #[arg(long)]
    env_clear: bool,
    /// The program's working directory (it must exist). Through sudo,
    /// doas, runuser, su and pkexec it is kept; through ssh and container
    /// exec the shim changes to it on the far side (with --no-shim it is
    /// refused there: those launchers do not pass it).
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
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
enum ShimLinkArg {
    Auto,
    Forwarded,
    InBand,
}

#[derive(Clone, Copy, ValueEnum)]
enum ChannelArg {
    Socket,
    SharedSocket,
    Pipes,
}

/// `KEY=VALUE`, split at the first `=`; the key must not be empty.
fn parse_assignment(s: &str) -> Result<(OsString, OsString), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => Err(format!("expected KEY=VALUE with a non-empty KEY, not {s:?}")),
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("expected a positive number of seconds, not {s}"));
    }
    // Beyond what a Duration holds (or infinite): no limit in practice.
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// `now + d`, or `None` (no deadline) when that is past what the clock can
/// represent.
fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// Copy progress shared with the relay threads.
#[derive(Default)]
struct Counts {
    to_child: AtomicU64,
    from_child: AtomicU64,
}

/// How long the supervising loop sleeps at most before it looks for
/// signals to pass on; the program's end wakes it at once.
const SIGNAL_CHECK: Duration = Duration::from_millis(20);

/// Runs the program; returns the exit code for umbilical.
pub fn run(args: RunArgs) -> i32 {
    if args.verbose > 0 {
        let level = if args.verbose > 1 { tracing::Level::DEBUG } else { tracing::Level::INFO };
        tracing_subscriber::fmt()
            .with_writer(io::stderr)
            .with_max_level(level)
            .with_timer(tracing_subscriber::fmt::time::uptime())
            .with_ansi(false)
            // Its complaint about a failed write goes through eprintln!,
            // which panics on a stderr nobody reads (exit 101).
            .log_internal_errors(false)
            .init();
    }
    let launcher = match crate::via::parse_chain(&args.via, args.detaches) {
        Ok(l) => l,
        Err(e) => {
            say!("umbilical: {e}");
            return EXIT_FAILURE;
        }
    };
    // Created before anything runs: an unwritable path must not let the
    // program run and then replace its status.
    let report_file = match &args.report {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(f),
            Err(e) => {
                say!("umbilical: cannot write the report to {}: {e}", path.display());
                return EXIT_FAILURE;
            }
        },
        None => None,
    };
    let stdout_closed = crate::relay::stdout_is_closed();
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
        .launcher(launcher.clone())
        .shim(match (args.shim, args.no_shim) {
            (true, _) => ShimMode::On,
            (_, true) => ShimMode::Off,
            _ => ShimMode::Auto,
        })
        .process_group(!args.foreground);
    if let Some(path) = &args.shim_path {
        cmd.shim_path(path);
    }
    if let Some(path) = &args.shim_source {
        cmd.shim_source(path);
    } else if let Some(shim) = crate::carried::shim() {
        cmd.shim_source_bytes(shim);
    }
    cmd.shim_link(match args.shim_link {
        ShimLinkArg::Auto => ShimLink::Auto,
        ShimLinkArg::Forwarded => ShimLink::Forwarded,
        ShimLinkArg::InBand => ShimLink::InBand,
    });
    // In env(1)'s order: clear, then remove, then set.
    if args.env_clear {
        cmd.env_clear();
    }
    for key in &args.env_remove {
        cmd.env_remove(key);
    }
    for (key, value) in &args.env {
        cmd.env(key, value);
    }
    if let Some(dir) = &args.cwd {
        cmd.current_dir(dir);
    }
    // --timeout covers the whole run, the handshake with the shim included.
    let timeout_bounds_start = args.timeout.is_some_and(|t| t <= args.connect_timeout);
    cmd.connect_timeout(args.timeout.map_or(args.connect_timeout, |t| t.min(args.connect_timeout)));
    // If umbilical dies, the shim stops the program as a timeout would.
    if let Some(grace) = args.kill_after {
        cmd.caller_gone_grace(grace);
    }
    let prompt_route = launcher.capabilities().prompts;
    let answered = crate::prompts::install(&mut cmd, prompt_route, args.askpass.as_ref(), args.verbose);
    let shim = cmd.shim_choice();
    if args.verbose > 0 {
        let used = if shim.used { "used" } else { "not used" };
        say!("umbilical: shim: {used} ({})", shim.reason);
    }
    // The engines stop only their exec client: say so before a timeout
    // leaves the program running in the container.
    let shim_route = launcher.capabilities().shim_route;
    if !shim.used && args.timeout.is_some() && shim_route == umbilical::ShimRoute::InBandCopied {
        say!(
            "umbilical: warning: without the shim, --timeout stops the exec client, not the program in the container ({}); --shim-source names a static shim, --shim-path one inside",
            shim.reason
        );
    }
    // On Windows the program runs in a kill-on-close job, so that --timeout
    // (and umbilical dying) ends what it started too, not only itself.
    #[cfg(windows)]
    cmd.kill_on_close_job(true);
    // Signals are caught before the program starts, so none sent from
    // then on is lost (or kills umbilical, leaving the program behind).
    let signals = match crate::signals::Forwarder::install(args.foreground) {
        Ok(s) => s,
        Err(e) => {
            say!("umbilical: cannot install signal handlers: {e}");
            return EXIT_FAILURE;
        }
    };
    let counts = Arc::new(Counts::default());
    let mut report = Report { shim: Some(shim), ..Report::default() };

    let code = match cmd.spawn() {
        Err(err) if err.kind() == ErrorKind::TimedOut && timeout_bounds_start => {
            let what = format!("timed out before the program started: {err}");
            say!("umbilical: {what}");
            report.error = Some(what);
            EXIT_TIMEOUT
        }
        Err(err) => {
            let hint = match err.kind() {
                ErrorKind::LauncherRefused => crate::prompts::refusal_hint(prompt_route, answered),
                _ => "",
            };
            say!("umbilical: {err}{hint}");
            report.error = Some(format!("{err}{hint}"));
            match err.kind() {
                ErrorKind::NotFound => 127,
                ErrorKind::NotExecutable => 126,
                _ => EXIT_FAILURE,
            }
        }
        Ok(child) => {
            report.shim_origin = child.shim_origin().map(str::to_string);
            let limits = Limits {
                deadline: args.timeout.and_then(deadline_after),
                signal: args.signal,
                kill_after: args.kill_after,
                drain: args.drain,
            };
            match supervise(child, &limits, &signals, stdout_closed, &counts, &mut report) {
                Ok(code) => code,
                Err(err) => {
                    say!("umbilical: {err}");
                    report.error = Some(err.to_string());
                    EXIT_FAILURE
                }
            }
        }
    };
    report.bytes_to_child = counts.to_child.load(Ordering::Relaxed);
    report.bytes_from_child = counts.from_child.load(Ordering::Relaxed);
    if let (Some(path), Some(mut file)) = (&args.report, report_file)
        && let Err(e) = file.write_all(report.to_json().as_bytes())
    {
        say!("umbilical: cannot write the report to {}: {e}", path.display());
        return EXIT_FAILURE;
    }
    code
}

/// What bounds a run.
struct Limits {
    deadline: Option<Instant>,
    signal: i32,
    kill_after: Option<Duration>,
    drain: Option<Duration>,
}

/// Relays both directions, passes signals on, waits for the end, and
/// returns the exit code.
fn supervise(
    mut child: Child,
    limits: &Limits,
    signals: &crate::signals::Forwarder,
    stdout_closed: bool,
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
    });
    std::thread::Builder::new().name("stdin-to-program".into()).spawn(feed)?;

    // program -> stdout, until the channel closes in every holder.
    let (done_tx, done_rx) = mpsc::channel();
    let c = counts.clone();
    let drain = from_program(reader, stdout_closed, move |n| {
        c.from_child.fetch_add(n, Ordering::Relaxed);
    });
    std::thread::Builder::new().name("program-to-stdout".into()).spawn(move || {
        let _ = done_tx.send(drain());
    })?;

    // Until the program ends: pass signals on, watch the deadline.
    let exit = loop {
        signals.forward_pending(&mut child);
        let slice = Instant::now() + SIGNAL_CHECK;
        let until = limits.deadline.map_or(slice, |d| d.min(slice));
        if let Some(exit) = child.wait_timeout(until.saturating_duration_since(Instant::now()))? {
            break exit;
        }
        if limits.deadline.is_some_and(|d| Instant::now() >= d) {
            return time_out(&mut child, limits, signals, report);
        }
    };
    report.exit = Some(exit);

    // The program is done; deliver what it wrote, within --drain and the
    // deadline, whichever comes first.
    let drain_until = [limits.drain.and_then(deadline_after), limits.deadline].into_iter().flatten().min();
    let relay = match drain_until {
        None => done_rx.recv().ok(),
        Some(d) => match done_rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
            Ok(r) => Some(r),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                report.output_truncated = true;
                if limits.deadline == Some(d) {
                    // --timeout, not --drain, cut it: the program had ended
                    // and something it started still holds the output.
                    let what = format!(
                        "timed out waiting for the program's output: the program had ended ({}), but something it started still holds the output open",
                        describe(exit.status)
                    );
                    say!("umbilical: {what}");
                    report.error = Some(what);
                    // Its process group goes too, as with timeout(1).
                    let _ = child.kill();
                    return Ok(EXIT_TIMEOUT);
                }
                let _ = io::stderr().flush();
                return Ok(exit_code(exit, report));
            }
        },
    };
    let output_failed = match relay {
        Some(Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => {
            say!("umbilical: writing the program's output: {e}");
            true
        }
        _ => false,
    };
    let _ = io::stderr().flush();
    let code = exit_code(exit, report);
    // Output that could not be written is a failure, as for cat(1); the
    // program's own failure, if any, takes precedence.
    Ok(if output_failed && code == 0 { 1 } else { code })
}

/// --timeout expired with the program still running: --signal, then
/// SIGKILL after --kill-after; exit 124.
fn time_out(
    child: &mut Child,
    limits: &Limits,
    signals: &crate::signals::Forwarder,
    report: &mut Report,
) -> io::Result<i32> {
    let sent = crate::signals::name(limits.signal);
    let first = if limits.signal == crate::signals::KILL { child.kill() } else { stop(child, limits.signal) };
    if let Err(e) = first {
        say!("umbilical: timed out; sending {sent} failed: {e}");
    }
    let grace = limits.kill_after.and_then(deadline_after);
    let mut killed = limits.signal == crate::signals::KILL;
    let exit = loop {
        signals.forward_pending(child);
        let slice = Instant::now() + SIGNAL_CHECK;
        let until = grace.map_or(slice, |g| g.min(slice));
        if let Some(exit) = child.wait_timeout(until.saturating_duration_since(Instant::now()))? {
            break exit;
        }
        if !killed && grace.is_some_and(|g| Instant::now() >= g) {
            child.kill()?;
            killed = true;
        }
    };
    report.exit = Some(exit);
    report.output_truncated = true;
    let what = if killed && limits.signal != crate::signals::KILL {
        format!(
            "timed out; sent {sent}, then KILL after the grace period; the program ended ({})",
            describe(exit.status)
        )
    } else {
        format!("timed out; sent {sent}; the program ended ({})", describe(exit.status))
    };
    say!("umbilical: {what}");
    report.error = Some(what);
    Ok(EXIT_TIMEOUT)
}

/// The polite stop: the chosen signal on Unix, then SIGCONT, as
/// `timeout(1)` does: a stopped program (or a launcher that stopped itself
/// with it) acts on no signal until resumed, and would outlive every bound.
/// On Windows (no signals) the program is terminated.
fn stop(child: &mut Child, signal: i32) -> io::Result<()> {
    match child.signal(signal) {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => child.terminate(),
        Err(e) => Err(e),
        Ok(()) => {
            if let Some(cont) = umbilical::Signal::Cont.number().filter(|&cont| cont != signal) {
                let _ = child.signal(cont);
            }
            Ok(())
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(c) => format!("exit code {c}"),
        ExitStatus::Signaled(s) => format!("killed by {}", crate::signals::name(s)),
        _ => "status unknown".into(),
    }
}

/// The exit code umbilical passes on for a program's end. A status that
/// the shim should have reported but could not (it died first) is
/// umbilical's failure, said on stderr and in the report: never a success.
fn exit_code(exit: Exit, report: &mut Report) -> i32 {
    match exit.status {
        // Unix keeps the low 8 bits anyway; Windows passes all 32 on.
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled(sig) => 128 + sig,
        _ if exit.status_lost() => {
            let what = "the program's status was lost: the link to the shim ended before its report (the shim, if alive, ends the program)";
            say!("umbilical: {what}");
            report.error = Some(what.into());
            EXIT_FAILURE
        }
        _ => 0,
    }
}
