//! What the comparison benches print, and the JSON and SVG they write:
//! one row per measure, umbilical against the baseline measured in the
//! same run. Shared by `crates/umbilical/benches/compare.rs` and
//! `crates/umbilical-cli/benches/relay.rs` (included with `#[path]`).

#![allow(dead_code)] // each bench uses part of it

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Which way is better for a row's figures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sense {
    /// A time: lower is better.
    Time,
    /// A rate: higher is better.
    Rate,
    /// A count (threads, KiB): lower is better, and no speed-up is drawn.
    Count,
}

/// One measure: umbilical's figure and the baseline's, same unit.
pub struct Row {
    pub group: &'static str,
    pub name: String,
    pub unit: &'static str,
    pub sense: Sense,
    pub ours: f64,
    pub baseline_name: &'static str,
    pub baseline: f64,
    /// The 90th percentile of each, where the figure is a latency.
    pub p90: Option<(f64, f64)>,
}

impl Row {
    /// How many times better umbilical is (above 1.0: better), for times
    /// and rates; `None` for counts.
    pub fn speedup(&self) -> Option<f64> {
        match self.sense {
            Sense::Time => Some(self.baseline / self.ours),
            Sense::Rate => Some(self.ours / self.baseline),
            Sense::Count => None,
        }
    }

    /// Prints the row as the harness always has: figures, then the ratio
    /// ours/baseline (times and counts) or the throughput ratio (rates).
    pub fn print(&self) {
        let p90 = self.p90.map_or(String::new(), |(o, b)| format!("   p90 {o:.1} / {b:.1}"));
        let ratio = match self.sense {
            Sense::Rate => format!("throughput ratio {:.2}", self.ours / self.baseline),
            Sense::Count if self.baseline == 0.0 => String::new(),
            _ => format!("ratio {:.2}", self.ours / self.baseline),
        };
        // A floor row measures what the OS or the launcher costs alone,
        // with no umbilical code in the measured side.
        let ours = if self.group.starts_with("floor") { "floor" } else { "umbilical" };
        println!(
            "{:<58} {ours} {:>9.2} {:<5} {} {:>9.2} {:<5} {ratio}{p90}",
            format!("{}: {}", self.group, self.name),
            self.ours,
            self.unit,
            self.baseline_name,
            self.baseline,
            self.unit
        );
    }
}

/// Median and 90th percentile of a sample.
pub fn p50_p90(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort_unstable();
    let p90 = v[((v.len() * 9) / 10).min(v.len() - 1)];
    (v[v.len() / 2], p90)
}

/// Where the JSON and SVG go: `target/bench/` of the workspace.
pub fn out_dir() -> PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp has a parent").join("bench");
    std::fs::create_dir_all(&dir).expect("create target/bench");
    dir
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `NAME.json` (every row) and `NAME.svg` (the speed-ups as bars)
/// and prints their paths.
pub fn write(name: &str, title: &str, rows: &[Row]) {
    let dir = out_dir();
    let mut json = String::from("{\n  \"rows\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let p90 = r.p90.map_or("null".to_string(), |(o, b)| format!("[{o:.3}, {b:.3}]"));
        let sense = match r.sense {
            Sense::Time => "time",
            Sense::Rate => "rate",
            Sense::Count => "count",
        };
        let _ = writeln!(
            json,
            "    {{\"group\": {}, \"name\": {}, \"unit\": {}, \"sense\": \"{sense}\", \"umbilical\": {:.3}, \"baseline_name\": {}, \"baseline\": {:.3}, \"p90\": {p90}}}{}",
            json_str(r.group),
            json_str(&r.name),
            json_str(r.unit),
            r.ours,
            json_str(r.baseline_name),
            r.baseline,
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    json.push_str("  ]\n}\n");
    let json_path = dir.join(format!("{name}.json"));
    std::fs::write(&json_path, json).expect("write the JSON");
    let svg_path = dir.join(format!("{name}.svg"));
    std::fs::write(&svg_path, svg(title, rows)).expect("write the SVG");
    println!("wrote {} and {}", json_path.display(), svg_path.display());
}

/// A horizontal bar per row with a speed-up: how many times better than
/// the baseline (1.0 marked), capped at 4 for drawing (the label keeps the
/// real figure).
fn svg(title: &str, rows: &[Row]) -> String {
    let drawn: Vec<(&Row, f64)> = rows.iter().filter_map(|r| r.speedup().map(|s| (r, s))).collect();
    let label = |r: &Row| format!("{}: {} (vs {})", r.group, r.name, r.baseline_name);
    // About 6.5 px per character at 12 px sans-serif.
    let longest = drawn.iter().map(|(r, _)| label(r).chars().count()).max().unwrap_or(20) as f64;
    let (left, bar_w, row_h, top) = (16.0 + 6.5 * longest, 360.0, 20.0, 40.0);
    let cap = 4.0;
    let height = top + row_h * drawn.len() as f64 + 40.0;
    let width = left + bar_w + 90.0;
    let x = |v: f64| left + bar_w * (v.min(cap) / cap);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        xml(title)
    );
    for (i, (r, v)) in drawn.iter().enumerate() {
        let y = top + row_h * i as f64;
        let colour = if *v >= 1.0 { "#2a7ab0" } else { "#c0504d" };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{left}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"{colour}\"/>\n\
             <text x=\"{:.1}\" y=\"{}\">{v:.2}x</text>\n",
            left - 6.0,
            y + 14.0,
            xml(&label(r)),
            y + 3.0,
            x(*v) - left,
            row_h - 6.0,
            x(*v) + 4.0,
            y + 14.0
        );
    }
    let one = x(1.0);
    let bottom = top + row_h * drawn.len() as f64;
    let _ = write!(
        s,
        "<line x1=\"{one:.1}\" y1=\"{}\" x2=\"{one:.1}\" y2=\"{bottom}\" stroke=\"black\" stroke-dasharray=\"4 3\"/>\n\
         <text x=\"{one:.1}\" y=\"{}\" text-anchor=\"middle\">1.0 = as fast as the baseline (right: faster; bars capped at {cap}x)</text>\n</svg>\n",
        top - 4.0,
        bottom + 18.0
    );
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
