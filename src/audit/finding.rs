//! A finding: one check that failed, with what, where and why, for people (text) and programs
//! (one JSON object per line).
//!
//! Every finding names its check with a stable code (`check`), the log index and the name it is
//! about when there is one, the file for manifest checks, and a message a person can act on.
//! Evidence that must be kept verbatim (two checkpoint notes of a split view) rides along in
//! `evidence` and is printed in full.

use serde_json::{json, Map, Value};

use crate::client::trust_state::SplitView;

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// A stable code for the check, e.g. `signature`, `file-changed`, `inconsistent-checkpoint`.
    pub check: &'static str,
    /// The log index of the entry concerned.
    pub index: Option<u64>,
    /// The declared name concerned.
    pub name: Option<String>,
    /// The file concerned (a manifest path, relative to the model directory).
    pub file: Option<String>,
    /// What failed and why, in words.
    pub message: String,
    /// Named texts to keep verbatim (e.g. `old_checkpoint`, `new_checkpoint`).
    pub evidence: Vec<(&'static str, String)>,
}

impl Finding {
    /// A finding of `check` with `message` and no location.
    pub fn new(check: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            check,
            index: None,
            name: None,
            file: None,
            message: message.into(),
            evidence: Vec::new(),
        }
    }

    /// The same finding, about log index `index`.
    pub fn at(mut self, index: u64) -> Finding {
        self.index = Some(index);
        self
    }

    /// The same finding, about the declared name `name`.
    pub fn named(mut self, name: impl Into<String>) -> Finding {
        self.name = Some(name.into());
        self
    }

    /// The same finding, about file `file`.
    pub fn file(mut self, file: impl Into<String>) -> Finding {
        self.file = Some(file.into());
        self
    }

    /// The `inconsistent-checkpoint` finding of a split view, with both notes as evidence.
    pub fn split_view(split: &SplitView) -> Finding {
        let mut f = Finding::new(
            "inconsistent-checkpoint",
            format!(
                "{}. Both checkpoints below are signed by the log's key: publish them, they prove \
                 that the log showed two different trees",
                split.reason
            ),
        );
        f.evidence = vec![
            ("old_checkpoint", split.old_note.clone()),
            ("new_checkpoint", split.new_note.clone()),
        ];
        f
    }

    /// One JSON object: `{"type": "finding", "check", "index"?, "name"?, "file"?, "message",
    /// <evidence>...}`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), json!("finding"));
        m.insert("check".into(), json!(self.check));
        if let Some(i) = self.index {
            m.insert("index".into(), json!(i));
        }
        if let Some(n) = &self.name {
            m.insert("name".into(), json!(n));
        }
        if let Some(f) = &self.file {
            m.insert("file".into(), json!(f));
        }
        m.insert("message".into(), json!(self.message));
        for (k, v) in &self.evidence {
            m.insert((*k).into(), json!(v));
        }
        Value::Object(m)
    }

    /// Text for people: `FAIL <check> [index I] [name N] [file F]: message`, then each piece of
    /// evidence indented, verbatim.
    pub fn to_text(&self) -> String {
        let mut where_ = Vec::new();
        if let Some(i) = self.index {
            where_.push(format!("index {i}"));
        }
        if let Some(n) = &self.name {
            where_.push(n.clone());
        }
        if let Some(f) = &self.file {
            where_.push(format!("file {f}"));
        }
        let location = match where_.is_empty() {
            true => String::new(),
            false => format!(" ({})", where_.join(", ")),
        };
        let mut text = format!("FAIL {}{location}: {}", self.check, self.message);
        for (k, v) in &self.evidence {
            text.push_str(&format!("\n  {k}:"));
            for line in v.lines() {
                text.push_str(&format!("\n    {line}"));
            }
        }
        text
    }
}

/// Where findings go: printed as they come (text or JSON lines) and counted.
#[derive(Debug)]
pub struct Printer {
    json: bool,
    count: u64,
}

impl Printer {
    /// A printer for JSON lines (`json`) or text.
    pub fn new(json: bool) -> Printer {
        Printer { json, count: 0 }
    }

    /// Prints `f` on stdout.
    pub fn report(&mut self, f: &Finding) {
        self.count += 1;
        match self.json {
            true => println!("{}", f.to_json()),
            false => println!("{}", f.to_text()),
        }
    }

    /// Reports that `command` could not be completed: a JSON `{"type": "error", "message"}`
    /// line on stdout, or `glasslog <command>: <message>` on stderr.
    pub fn error(&self, command: &str, message: &dyn std::fmt::Display) {
        match self.json {
            true => println!(
                "{}",
                json!({"type": "error", "message": message.to_string()})
            ),
            false => eprintln!("glasslog {command}: {message}"),
        }
    }

    /// How many findings were printed.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether output is JSON lines.
    pub fn json(&self) -> bool {
        self.json
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_say_what_where_and_why() {
        let f = Finding::new("file-changed", "differs")
            .at(3)
            .named("org/m")
            .file("w.bin");
        assert_eq!(
            f.to_text(),
            "FAIL file-changed (index 3, org/m, file w.bin): differs"
        );
        let v = f.to_json();
        assert_eq!(v["type"], "finding");
        assert_eq!(v["check"], "file-changed");
        assert_eq!(v["index"], 3);
        assert_eq!(v["file"], "w.bin");
        assert!(Finding::new("x", "y").to_json().get("index").is_none());
    }

    #[test]
    fn split_views_carry_both_notes_verbatim() {
        let s = SplitView {
            old_note: "a\n1\nX\n\n— a sig\n".into(),
            new_note: "a\n1\nY\n\n— a sig2\n".into(),
            reason: "two trees".into(),
        };
        let f = Finding::split_view(&s);
        assert_eq!(f.check, "inconsistent-checkpoint");
        let v = f.to_json();
        assert_eq!(v["old_checkpoint"], s.old_note.as_str());
        assert_eq!(v["new_checkpoint"], s.new_note.as_str());
        assert!(f.to_text().contains("\n    — a sig2"));
    }
}
