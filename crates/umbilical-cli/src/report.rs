//! The `--report` file: what happened, as JSON.

use std::fmt::Write as _;

use umbilical::{Detection, Exit, ExitStatus, ShimChoice};

/// The report format's version (`docs/report.schema.json`): fields are
/// only added within a version; a change of meaning bumps it.
pub const VERSION: u32 = 1;

/// Everything the report says.
#[derive(Default)]
pub struct Report {
    pub exit: Option<Exit>,
    pub pid: Option<u32>,
    pub bytes_to_child: u64,
    pub bytes_from_child: u64,
    /// Set when umbilical timed out or failed.
    pub error: Option<String>,
    /// The program's output was not copied to the end (--drain or
    /// --timeout cut it).
    pub output_truncated: bool,
    /// Whether the shim was used, and why.
    pub shim: Option<ShimChoice>,
    /// Where the shim that ran came from (`Child::shim_origin`).
    pub shim_origin: Option<String>,
}

impl Report {
    pub fn to_json(&self) -> String {
        let status = match self.exit.map(|e| e.status) {
            Some(ExitStatus::Exited(n)) => format!("{{\"exited\": {n}}}"),
            Some(ExitStatus::Signaled(n)) => format!("{{\"signaled\": {n}}}"),
            _ => "null".to_string(),
        };
        let detected_by = match self.exit {
            Some(e) => format!("\"{}\"", e.detection.as_str()),
            None => "null".to_string(),
        };
        let pid = self.pid.map_or("null".to_string(), |p| p.to_string());
        let mut json = format!(
            "{{\"version\": {VERSION}, \"status\": {status}, \"detected_by\": {detected_by}, \"pid\": {pid}, \"bytes_to_child\": {}, \"bytes_from_child\": {}, \"output_truncated\": {}",
            self.bytes_to_child, self.bytes_from_child, self.output_truncated
        );
        if let Some(why) = self.exit.and_then(unknown_status_reason) {
            let _ = write!(json, ", \"status_unknown_reason\": {}", quote(why));
        }
        if let Some(shim) = &self.shim {
            let _ = write!(json, ", \"shim\": {{\"used\": {}, \"reason\": {}", shim.used, quote(&shim.reason));
            if let Some(origin) = &self.shim_origin {
                let _ = write!(json, ", \"origin\": {}", quote(origin));
            }
            json.push('}');
        }
        if let Some(err) = &self.error {
            let _ = write!(json, ", \"error\": {}", quote(err));
        }
        json.push_str("}\n");
        json
    }
}

/// Why a known end has no status: lost (the shim died first), or unknowable
/// by the chosen way of waiting.
fn unknown_status_reason(exit: Exit) -> Option<&'static str> {
    if exit.status != ExitStatus::Unknown {
        return None;
    }
    Some(match exit.detection {
        Detection::ShimLost => "lost: the shim died before reporting the program's status",
        Detection::Lifeline => "by design: the lifeline closing says every holder is gone, not how",
        Detection::ChannelClosed => "by design: the channel closing says every holder is gone, not how",
        _ => "unknown",
    })
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shapes() {
        let r = Report {
            exit: Some(Exit { status: ExitStatus::Signaled(9), detection: Detection::Process }),
            pid: Some(42),
            bytes_to_child: 1,
            bytes_from_child: 2,
            error: Some("timed \"out\"\n".into()),
            output_truncated: true,
            shim: None,
            shim_origin: None,
        };
        assert_eq!(
            r.to_json(),
            "{\"version\": 1, \"status\": {\"signaled\": 9}, \"detected_by\": \"process\", \"pid\": 42, \"bytes_to_child\": 1, \"bytes_from_child\": 2, \"output_truncated\": true, \"error\": \"timed \\\"out\\\"\\n\"}\n"
        );
        let r = Report {
            exit: Some(Exit { status: ExitStatus::Unknown, detection: Detection::ShimLost }),
            ..Report::default()
        };
        assert!(r.to_json().contains("\"status\": null, \"detected_by\": \"shim-lost\""), "{}", r.to_json());
        assert!(r.to_json().contains("\"status_unknown_reason\": \"lost: the shim died"), "{}", r.to_json());
        let r = Report {
            exit: Some(Exit { status: ExitStatus::Unknown, detection: Detection::Lifeline }),
            ..Report::default()
        };
        assert!(r.to_json().contains("\"status_unknown_reason\": \"by design"), "{}", r.to_json());
        // The shim: why, and where it came from once it ran.
        let r = Report {
            shim: Some(umbilical::Command::new("true").shim(true).shim_choice()),
            shim_origin: Some("/usr/bin/umbilical".into()),
            ..Report::default()
        };
        assert!(
            r.to_json()
                .contains("\"shim\": {\"used\": true, \"reason\": \"asked for\", \"origin\": \"/usr/bin/umbilical\"}"),
            "{}",
            r.to_json()
        );
        let r = Report::default();
        assert_eq!(
            r.to_json(),
            "{\"version\": 1, \"status\": null, \"detected_by\": null, \"pid\": null, \"bytes_to_child\": 0, \"bytes_from_child\": 0, \"output_truncated\": false}\n"
        );
    }
}
