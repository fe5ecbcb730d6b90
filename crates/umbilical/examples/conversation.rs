//! A line-by-line conversation with a helper program: one request line
//! out, one answer line back, as many times as needed, then a half-close
//! that tells the helper "no more requests", and its exact status.
//!
//! ```text
//! cargo run -p umbilical --example conversation            # the helper runs as you
//! cargo run -p umbilical --example conversation -- --sudo  # as root, through sudo -n and the shim
//! ```

use std::io::{BufRead, BufReader, Write};

use umbilical::{Command, Launcher, ShimMode};

/// The helper: answers each line with its length, and says goodbye at EOF.
const HELPER: &str = r#"while IFS= read -r line; do printf '%s %d\n' "$line" "${#line}"; done; echo bye; exit 3"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // This binary doubles as the shim: sudo starts it again in shim mode.
    umbilical::shim::run_if_invoked();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", HELPER]);
    if std::env::args().any(|a| a == "--sudo") {
        cmd.launcher(Launcher::Sudo { user: None, non_interactive: true }).shim(ShimMode::Auto);
    }
    let mut child = cmd.spawn()?;
    let (reader, mut writer) = child.take_channel().expect("the channel").split();
    let mut answers = BufReader::new(reader).lines();
    for request in ["ping", "hello there", "umbilical"] {
        writeln!(writer, "{request}")?;
        let answer = answers.next().ok_or("the helper hung up")??;
        println!("{request:>12} -> {answer}");
        assert_eq!(answer, format!("{request} {}", request.len()));
    }
    writer.shutdown()?; // EOF: the helper's loop ends
    let last = answers.next().ok_or("no goodbye")??;
    assert_eq!(last, "bye");
    let exit = child.wait()?;
    println!("helper said {last:?} and exited with {:?} ({:?})", exit.status, exit.detection);
    assert_eq!(exit.code(), Some(3), "the exact status, through a launcher too");
    Ok(())
}
