//! The seed scenario: the program is started through a wrapper that exits
//! at once and leaves a background process holding the channel. Waiting
//! for the wrapper's process would report the end too early; the lifeline
//! waits for the real program.
//!
//! ```text
//! cargo run -p umbilical --example wrapper_exits_at_once
//! ```

use std::io::{Read, Write};
use std::time::Instant;

use umbilical::{Command, Detection, ExitDetection};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // sh starts a background `tr` on the channel and exits 0 at once. (A
    // non-interactive sh gives a background job /dev/null as stdin: the
    // channel is passed on as fd 4.)
    let mut child = Command::new("sh")
        .args(["-c", "exec 4<&0; (sleep 0.3; tr a-z A-Z <&4) & exit 0"])
        .exit_detection(ExitDetection::Lifeline)
        .spawn()?;
    let start = Instant::now();
    let mut channel = child.take_channel().expect("the channel");
    channel.write_all(b"still answering after the wrapper left\n")?;
    channel.shutdown_write()?;
    let mut out = String::new();
    channel.read_to_string(&mut out)?;
    let exit = child.wait()?;
    println!("{}", out.trim_end());
    println!("ended after {:?}, seen by {:?}", start.elapsed(), exit.detection);
    assert_eq!(out, "STILL ANSWERING AFTER THE WRAPPER LEFT\n");
    assert_eq!(exit.detection, Detection::Lifeline);
    Ok(())
}
