//! What `audit`, `verify` and `monitor` share: the [`Finding`] they report, in one vocabulary of
//! kinds, and the one place findings are written ([`Printer`]).
//!
//! The monitor writes JSON lines only; `audit` and `verify` write text for people or, with
//! `--json`, the same JSON lines as the monitor (then a `{"type": "summary"}` line of their own).
//! What is a finding is decided elsewhere: the audit's checks (`crate::audit`), `verify`'s
//! (`crate::verify`) and the monitor's rules (`crate::monitor`).

pub mod finding;

use std::io::Write;

pub use finding::{Evidence, Finding, FindingKind, Severity};

/// Writes findings on stdout, as they come, one per line (JSON) or per paragraph (text), and
/// counts them.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    count: u64,
}

impl Printer {
    /// A printer of JSON lines ([`Finding::to_json_line`]) if `json`, else of text
    /// ([`Finding::to_text`]).
    pub fn new(json: bool) -> Printer {
        Printer { json, count: 0 }
    }

    /// Writes `f` on stdout and flushes, so that a reader (or `--exec`) sees each finding as soon
    /// as it is made.
    ///
    /// # Errors
    /// Stdout cannot be written: `f` is then not counted.
    pub fn report(&mut self, f: &Finding) -> std::io::Result<()> {
        let text = match self.json {
            true => f.to_json_line(),
            false => f.to_text(),
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}").and_then(|()| out.flush())?;
        self.count += 1;
        Ok(())
    }

    /// Reports that `command` could not be completed: a JSON `{"type": "error", "message"}`
    /// line on stdout, or `glasslog <command>: <message>` on stderr.
    pub fn error(&self, command: &str, message: &dyn std::fmt::Display) {
        match self.json {
            true => println!(
                "{}",
                serde_json::json!({"type": "error", "message": message.to_string()})
            ),
            false => eprintln!("glasslog {command}: {message}"),
        }
    }

    /// How many findings were written.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether output is JSON lines.
    pub fn json(&self) -> bool {
        self.json
    }
}
