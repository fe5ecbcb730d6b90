//! The comparison harness: umbilical and a baseline doing the same work in
//! the same run, interleaved round by round so both see the same machine:
//! std's `process::Command` (spawn, throughput, round trips, exit latency,
//! threads and memory per child), a raw socketpair (throughput), a direct
//! start (the shim's price). Prints each row with its ratio, and writes
//! `target/bench/compare.json` and a chart, `target/bench/compare.svg`
//! (docs/PERFORMANCE.md shows a real run). Timings are never asserted.
//!
//! `cargo bench -p umbilical --bench compare` (add `-- --quick` for fewer
//! rounds, as CI does). This binary doubles as the shim, and as the
//! program that stamps the time just before it exits (exit latency).

#[cfg(unix)]
#[path = "compare/imp.rs"]
mod imp;

#[cfg(unix)]
fn main() {
    imp::main();
}

#[cfg(not(unix))]
fn main() {
    println!(
        "SKIP: the comparison harness runs on Unix (cat, sleep, taskset, /proc); Windows figures: docs/PERFORMANCE.md"
    );
}
