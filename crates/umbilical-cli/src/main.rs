//! `umbilical`: run a program over one duplex channel.

/// Writes a line to stderr, as `eprintln!` does, but never panics: a
/// stderr whose reader left (a closed pipe, `/dev/full`) must not turn a
/// documented exit code into a panic's 101. The message is lost; the exit
/// code still says what happened.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Writes a line to stdout without panicking: `umbilical doctor | head -1`
/// ends quietly when the reader leaves, as `man` does.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod carried;
mod doctor;
mod prompts;
mod relay;
mod report;
mod run;
mod signals;
mod via;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Run a program with its stdin and stdout on one full-duplex channel.
///
/// umbilical copies its own stdin into the program, half-closes the channel
/// when its stdin ends (the program reads EOF), copies the program's output
/// to its stdout until the channel closes, and exits with the program's code.
#[derive(Parser)]
#[command(name = "umbilical", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run PROGRAM with ARGS over the channel.
    ///
    /// Exit status: the program's code; 128+N if it was killed by signal N
    /// (a signal sent to umbilical is passed on to the program); 124 if
    /// --timeout expired; 125 if umbilical itself failed; 126 if PROGRAM is
    /// not executable; 127 if it was not found; 1 if the program succeeded
    /// but its output could not be written. With --wait lifeline or channel
    /// the status is not knowable and umbilical exits 0 once the program is
    /// done (the report says null). docs/cli.md has every case.
    Run(Box<run::RunArgs>),
    /// Print the platform facts umbilical depends on: OS, spawn and exit
    /// mechanisms, how the shim is authenticated, launchers found on PATH,
    /// and on Windows the Winsock catalogue with non-IFS Layered Service
    /// Providers marked.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script for SHELL to stdout, e.g.
    /// `umbilical completions bash > /etc/bash_completion.d/umbilical`, or
    /// for zsh into a directory on $fpath as `_umbilical`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff) to stdout: umbilical(1), or with a
    /// sub-command its own page, e.g.
    /// `umbilical man run > /usr/local/share/man/man1/umbilical-run.1`.
    Man {
        /// The sub-command (run, doctor, completions, man).
        subcommand: Option<String>,
    },
    /// The shim a launcher starts (internal; see --shim).
    #[command(hide = true)]
    Shim {
        /// Where the parent waits.
        #[arg(long = "umbilical-rendezvous")]
        rendezvous: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    // The shim's own invocation comes first, before any argument parsing.
    umbilical::shim::run_if_invoked();
    // `run` exits with the program's full code (32 bits on Windows), which
    // `ExitCode` cannot carry.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are not failures; usage errors are
            // umbilical's own failure, 125, as for env(1).
            return if e.use_stderr() { ExitCode::from(125) } else { ExitCode::SUCCESS };
        }
    };
    match cli.command {
        Command::Run(args) => std::process::exit(run::run(*args)),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "umbilical", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { subcommand } => man(subcommand.as_deref()),
        Command::Shim { rendezvous } => std::process::exit(umbilical::shim::serve(&rendezvous)),
    }
}

/// `umbilical man [SUBCOMMAND]`.
fn man(subcommand: Option<&str>) -> ExitCode {
    let top = Cli::command();
    let page = match subcommand {
        None => top,
        Some(name) => match top.find_subcommand(name).filter(|c| !c.is_hide_set()) {
            // Named as the page's file is (umbilical-run), with the
            // version it documents.
            Some(sub) => sub.clone().name(format!("umbilical-{name}")).version(env!("CARGO_PKG_VERSION")),
            None => {
                say!("umbilical: no sub-command {name:?} (run, doctor, completions, man)");
                return ExitCode::from(125);
            }
        },
    };
    match clap_mangen::Man::new(page).render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            say!("umbilical: cannot write the man page: {e}");
            ExitCode::from(125)
        }
    }
}
