//! Witness policies, C2SP tlog-policy: which logs, which witnesses, and the quorum of witness
//! cosignatures a checkpoint needs before it is trusted.
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> all|any|<k> <name>...
//! quorum <name>|none
//! ```
//!
//! Names are local to the file (witnesses and groups share one namespace; `none` is predefined);
//! a group or the quorum names only what earlier lines defined, so groups cannot be circular; a
//! group lists each member at most once, and `1 <= k <= n`. Keys are C2SP vkeys: type 0x01 for a
//! log (its checkpoint signer), type 0x04 for a witness (cosignature/v1). Two witnesses (or two
//! logs) with the same public key are refused, whatever their names.
//!
//! [`WitnessPolicy::check`] decides whether the cosignatures on a checkpoint meet the quorum,
//! and says which witnesses signed and which did not. No I/O: the caller reads the file.

use std::collections::HashMap;
use std::fmt;

use signed_note::Note;

use crate::tlog::cosignature::{CosignatureError, CosignerKey};
use crate::tlog::note::LogVerifier;

/// The most logs, witnesses and groups one policy may define (the spec asks for at least 32).
pub const MAX_DEFINITIONS: usize = 256;

/// What is wrong with a policy file, or with a checkpoint under a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A line that breaks the format; `line` is 1-based.
    #[error("witness policy, line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    /// A file without a `quorum` line.
    #[error("witness policy: no quorum line (write \"quorum none\" to require no cosignature)")]
    NoQuorum,
    /// The note is not a signed note.
    #[error("the checkpoint is not a signed note: {0}")]
    MalformedNote(String),
    /// A cosignature by a witness of the policy that does not verify.
    #[error("witness {witness}: {source}")]
    BadCosignature {
        witness: String,
        source: CosignatureError,
    },
    /// Valid cosignatures short of the quorum.
    #[error(
        "the checkpoint does not meet the witness policy's quorum {quorum}: cosigned by {} of {} \
         witnesses (signed: {}; not signed: {})",
        signed.len(), signed.len() + missing.len(), list(signed), list(missing)
    )]
    BelowQuorum {
        quorum: String,
        signed: Vec<String>,
        missing: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A log the policy names.
#[derive(Clone, Debug)]
pub struct PolicyLog {
    /// Its checkpoint verifier.
    pub verifier: LogVerifier,
    /// Where to reach it, if given (meaning is the application's).
    pub url: Option<String>,
}

/// A witness the policy names.
#[derive(Clone, Debug)]
pub struct PolicyWitness {
    /// Its name in the policy file (local to the file; not the key name).
    pub name: String,
    /// Its cosigning key.
    pub key: CosignerKey,
    /// Its tlog-witness submission prefix, if given: the log POSTs to `<url>/add-checkpoint`.
    pub url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Clone, Debug)]
struct Group {
    threshold: usize,
    members: Vec<Member>,
}

/// A parsed tlog-policy.
#[derive(Clone, Debug)]
pub struct WitnessPolicy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    /// `None` for `quorum none`.
    quorum: Option<Member>,
    quorum_name: String,
}

/// The cosignatures of one checkpoint that verified under a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignatures {
    /// Per witness of the policy, in policy order: the timestamp of its valid cosignature.
    pub by_witness: Vec<Option<u64>>,
    /// Per witness of the policy, in policy order: its verified signature line, ending in a
    /// newline.
    pub lines: Vec<Option<String>>,
}

impl WitnessPolicy {
    /// Parses a policy file.
    ///
    /// # Errors
    /// [`PolicyError::Syntax`] naming the line, or [`PolicyError::NoQuorum`].
    pub fn parse(text: &[u8]) -> Result<WitnessPolicy, PolicyError> {
        let mut p = Parser::default();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            let syntax = |reason: String| PolicyError::Syntax { line: n, reason };
            if let Some(&b) = line
                .iter()
                .find(|&&b| !(b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80))
            {
                return Err(syntax(format!("control character 0x{b:02x}")));
            }
            let line = std::str::from_utf8(line)
                .map_err(|_| syntax("not UTF-8 (glasslog reads policies as UTF-8)".into()))?;
            let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
            match words.first() {
                None => {}
                Some(w) if w.starts_with('#') => {}
                Some(_) => p.line(&words).map_err(syntax)?,
            }
        }
        let Some(quorum) = p.quorum else {
            return Err(PolicyError::NoQuorum);
        };
        Ok(WitnessPolicy {
            logs: p.logs,
            witnesses: p.witnesses,
            groups: p.groups,
            quorum,
            quorum_name: p.quorum_name,
        })
    }

    /// The logs listed (possibly none).
    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    /// The witnesses listed, in file order.
    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// Whether the quorum is `none` (no cosignature needed).
    pub fn needs_no_cosignature(&self) -> bool {
        self.quorum.is_none()
    }

    /// Whether this policy accepts checkpoints of `log`: it lists no log, or lists this key.
    pub fn covers_log(&self, log: &LogVerifier) -> bool {
        self.logs.is_empty()
            || self
                .logs
                .iter()
                .any(|l| l.verifier.verifier_key() == log.verifier_key())
    }

    /// The valid cosignatures on `note` by the policy's witnesses. Signature lines of other keys
    /// (the log's, unknown witnesses') are ignored; a repeated line of one witness counts once.
    /// The log's own signature is not checked here.
    ///
    /// # Errors
    /// [`PolicyError::MalformedNote`], or [`PolicyError::BadCosignature`] for a line with a
    /// policy witness's name and key id that does not verify.
    pub fn cosignatures(&self, note: &str) -> Result<Cosignatures, PolicyError> {
        let parsed = Note::from_bytes(note.as_bytes())
            .map_err(|e| PolicyError::MalformedNote(e.to_string()))?;
        let text = std::str::from_utf8(parsed.text()).expect("a Note's text is UTF-8");
        let mut by_witness = vec![None; self.witnesses.len()];
        let mut lines = vec![None; self.witnesses.len()];
        for sig in signature_lines(note) {
            for (i, w) in self.witnesses.iter().enumerate() {
                if by_witness[i].is_some() || !w.key.matches(&sig) {
                    continue;
                }
                let time = w.key.verify(text, sig.signature()).map_err(|source| {
                    PolicyError::BadCosignature {
                        witness: w.name.clone(),
                        source,
                    }
                })?;
                by_witness[i] = Some(time);
                lines[i] = Some(String::from_utf8_lossy(&sig.to_bytes()).into_owned());
            }
        }
        Ok(Cosignatures { by_witness, lines })
    }

    /// Witness `i`'s valid cosignature among signature `lines` over a note's `text`, verifying
    /// only the lines with its name and key id (one Ed25519 verification in the usual case).
    ///
    /// # Errors
    /// [`PolicyError::BadCosignature`] for a line of its key that does not verify.
    pub fn cosignature_by(
        &self,
        i: usize,
        text: &str,
        lines: &[String],
    ) -> Result<Option<String>, PolicyError> {
        let w = &self.witnesses[i];
        for line in lines {
            let Ok(sig) = crate::tlog::cosignature::parse_line(line) else {
                continue;
            };
            if !w.key.matches(&sig) {
                continue;
            }
            w.key
                .verify(text, sig.signature())
                .map_err(|source| PolicyError::BadCosignature {
                    witness: w.name.clone(),
                    source,
                })?;
            return Ok(Some(String::from_utf8_lossy(&sig.to_bytes()).into_owned()));
        }
        Ok(None)
    }

    /// Whether the valid cosignatures `c` meet the quorum.
    pub fn met_by(&self, c: &Cosignatures) -> bool {
        let signed: Vec<bool> = c.by_witness.iter().map(Option::is_some).collect();
        self.quorum_met(&signed)
    }

    /// Whether witnesses `signed` (per witness, in policy order) meet the quorum.
    pub fn quorum_met(&self, signed: &[bool]) -> bool {
        self.quorum.is_none_or(|q| self.witnessed(q, signed))
    }

    /// Checks that the cosignatures on `note` meet the quorum, and returns them.
    ///
    /// # Errors
    /// Those of [`cosignatures`](Self::cosignatures), and [`PolicyError::BelowQuorum`] naming who
    /// signed and who did not.
    pub fn check(&self, note: &str) -> Result<Cosignatures, PolicyError> {
        let cosigs = self.cosignatures(note)?;
        let signed: Vec<bool> = cosigs.by_witness.iter().map(Option::is_some).collect();
        if self.quorum_met(&signed) {
            return Ok(cosigs);
        }
        let (yes, no): (Vec<_>, Vec<_>) =
            self.witnesses.iter().zip(&signed).partition(|(_, s)| **s);
        Err(PolicyError::BelowQuorum {
            quorum: self.quorum_name.clone(),
            signed: yes.into_iter().map(|(w, _)| w.name.clone()).collect(),
            missing: no.into_iter().map(|(w, _)| w.name.clone()).collect(),
        })
    }

    fn witnessed(&self, m: Member, signed: &[bool]) -> bool {
        match m {
            Member::Witness(i) => signed[i],
            Member::Group(g) => {
                let group = &self.groups[g];
                let n = group
                    .members
                    .iter()
                    .filter(|&&m| self.witnessed(m, signed))
                    .count();
                n >= group.threshold
            }
        }
    }
}

impl fmt::Display for WitnessPolicy {
    /// A one-line summary: the quorum and the witnesses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.witnesses.iter().map(|w| w.name.as_str()).collect();
        write!(
            f,
            "quorum {} over witnesses [{}]",
            self.quorum_name,
            names.join(", ")
        )
    }
}

/// The signature lines of a signed note, in order (malformed lines skipped: the note parsed).
fn signature_lines(note: &str) -> impl Iterator<Item = signed_note::Signature> + '_ {
    let sigs = note.rsplit_once("\n\n").map_or("", |(_, s)| s);
    sigs.lines()
        .filter_map(|l| signed_note::Signature::from_bytes(l.as_bytes()).ok())
}

#[derive(Default)]
struct Parser {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    names: HashMap<String, Member>,
    quorum: Option<Option<Member>>,
    quorum_name: String,
}

impl Parser {
    fn line(&mut self, words: &[&str]) -> Result<(), String> {
        match words {
            ["log", vkey] => self.log(vkey, None),
            ["log", vkey, url] => self.log(vkey, Some(url)),
            ["log", ..] => Err("want: log <vkey> [<url>]".into()),
            ["witness", name, vkey] => self.witness(name, vkey, None),
            ["witness", name, vkey, url] => self.witness(name, vkey, Some(url)),
            ["witness", ..] => Err("want: witness <name> <vkey> [<url>]".into()),
            ["group", name, k, members @ ..] if !members.is_empty() => self.group(name, k, members),
            ["group", ..] => Err("want: group <name> all|any|<k> <name>...".into()),
            ["quorum", name] => self.quorum(name),
            ["quorum", ..] => Err("want: quorum <name>".into()),
            [other, ..] => Err(format!(
                "unknown keyword {other:?} (want log, witness, group or quorum)"
            )),
            [] => Ok(()),
        }
    }

    fn log(&mut self, vkey: &str, url: Option<&str>) -> Result<(), String> {
        let verifier = LogVerifier::new(vkey).map_err(|e| e.to_string())?;
        let key = key_bytes(vkey);
        if self
            .logs
            .iter()
            .any(|l| key_bytes(l.verifier.verifier_key()) == key)
        {
            return Err("the same log key is listed twice".into());
        }
        if self.logs.len() == MAX_DEFINITIONS {
            return Err(format!("more than {MAX_DEFINITIONS} logs"));
        }
        self.logs.push(PolicyLog {
            verifier,
            url: url.map(str::to_string),
        });
        Ok(())
    }

    fn witness(&mut self, name: &str, vkey: &str, url: Option<&str>) -> Result<(), String> {
        self.define(name)?;
        let key = CosignerKey::from_vkey(vkey).map_err(|e| e.to_string())?;
        if let Some(w) = self
            .witnesses
            .iter()
            .find(|w| key_bytes(&w.key.to_vkey()) == key_bytes(vkey))
        {
            return Err(format!(
                "witness {name} has the same key as witness {}",
                w.name
            ));
        }
        if self.witnesses.len() == MAX_DEFINITIONS {
            return Err(format!("more than {MAX_DEFINITIONS} witnesses"));
        }
        self.names
            .insert(name.to_string(), Member::Witness(self.witnesses.len()));
        self.witnesses.push(PolicyWitness {
            name: name.to_string(),
            key,
            url: url.map(str::to_string),
        });
        Ok(())
    }

    fn group(&mut self, name: &str, k: &str, members: &[&str]) -> Result<(), String> {
        self.define(name)?;
        let mut resolved = Vec::with_capacity(members.len());
        for m in members {
            let member = *self.names.get(*m).ok_or_else(|| {
                format!("group {name}: member {m:?} is not a witness or group defined above")
            })?;
            if resolved.contains(&member) {
                return Err(format!("group {name}: member {m} is listed twice"));
            }
            resolved.push(member);
        }
        let n = resolved.len();
        let threshold = match k {
            "all" => n,
            "any" => 1,
            k => match k.parse::<usize>() {
                Ok(v) if k.bytes().all(|b| b.is_ascii_digit()) && (1..=n).contains(&v) => v,
                _ => {
                    return Err(format!(
                        "group {name}: threshold {k:?} is not all, any or a number from 1 to {n}"
                    ))
                }
            },
        };
        if self.groups.len() == MAX_DEFINITIONS {
            return Err(format!("more than {MAX_DEFINITIONS} groups"));
        }
        self.names
            .insert(name.to_string(), Member::Group(self.groups.len()));
        self.groups.push(Group {
            threshold,
            members: resolved,
        });
        Ok(())
    }

    fn quorum(&mut self, name: &str) -> Result<(), String> {
        if self.quorum.is_some() {
            return Err("a second quorum line".into());
        }
        let member = if name == "none" {
            None
        } else {
            Some(*self.names.get(name).ok_or_else(|| {
                format!("quorum {name:?} is not a witness or group defined above")
            })?)
        };
        self.quorum = Some(member);
        self.quorum_name = name.to_string();
        Ok(())
    }

    fn define(&self, name: &str) -> Result<(), String> {
        if name == "none" {
            return Err("\"none\" is predefined and cannot name a witness or group".into());
        }
        if self.names.contains_key(name) {
            return Err(format!("the name {name} is defined twice"));
        }
        Ok(())
    }
}

/// The key material of a vkey (after the second '+'), which identifies the key whatever its
/// name and id.
fn key_bytes(vkey: &str) -> &str {
    vkey.splitn(3, '+').nth(2).unwrap_or(vkey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::checkpoint::{tests::checkpoint, Origin};
    use crate::tlog::cosignature::Cosigner;
    use crate::tlog::note::LogSigner;
    use ed25519_dalek::SigningKey;

    fn witness(name: &str, seed: u8) -> Cosigner {
        Cosigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    fn policy_of(ws: &[Cosigner], tail: &str) -> WitnessPolicy {
        let mut text = String::new();
        for (i, w) in ws.iter().enumerate() {
            text += &format!(
                "witness W{i} {} http://127.0.0.1:{}\n",
                w.public().to_vkey(),
                9000 + i
            );
        }
        text += tail;
        WitnessPolicy::parse(text.as_bytes()).unwrap()
    }

    fn signed_note(ws: &[&Cosigner]) -> String {
        let log = LogSigner::new(
            Origin::new("example.com/log").unwrap(),
            SigningKey::from_bytes(&[9; 32]),
        );
        let cp = checkpoint("example.com/log", 10);
        let mut note = log.sign(&cp).unwrap();
        for w in ws {
            note += &w.cosign(&cp.to_body(), 1000);
        }
        note
    }

    #[test]
    fn two_of_three() {
        let ws = [
            witness("a.example", 1),
            witness("b.example", 2),
            witness("c.example", 3),
        ];
        let p = policy_of(&ws, "group g 2 W0 W1 W2\nquorum g\n");
        assert!(p.check(&signed_note(&[&ws[0], &ws[2]])).is_ok());
        let err = p.check(&signed_note(&[&ws[1]])).unwrap_err();
        assert_eq!(
            err,
            PolicyError::BelowQuorum {
                quorum: "g".into(),
                signed: vec!["W1".into()],
                missing: vec!["W0".into(), "W2".into()],
            }
        );
        assert!(
            err.to_string().contains("cosigned by 1 of 3 witnesses"),
            "{err}"
        );
        // One witness twice is one cosignature.
        assert!(p.check(&signed_note(&[&ws[1], &ws[1]])).is_err());
    }

    #[test]
    fn nested_groups_all_and_any() {
        let ws: Vec<Cosigner> = (1..=4).map(|i| witness(&format!("w{i}"), i)).collect();
        let p = policy_of(
            &ws,
            "group x all W0 W1\ngroup y any W2 W3\ngroup xy all x y\nquorum xy\n",
        );
        let met = |s: [bool; 4]| p.quorum_met(&s);
        assert!(met([true, true, false, true]));
        assert!(!met([true, false, true, true]));
        assert!(!met([true, true, false, false]));
        let none = policy_of(&ws, "quorum none\n");
        assert!(none.needs_no_cosignature() && none.check(&signed_note(&[])).is_ok());
        let single = policy_of(&ws, "quorum W3\n");
        assert!(single.check(&signed_note(&[&ws[3]])).is_ok());
    }

    #[test]
    fn a_bad_cosignature_by_a_listed_witness_is_refused_and_strangers_are_ignored() {
        let ws = [witness("a", 1), witness("b", 2)];
        let p = policy_of(&ws, "group g any W0 W1\nquorum g\n");
        let stranger = witness("c", 7);
        assert!(p.check(&signed_note(&[&stranger, &ws[0]])).is_ok());
        let note = signed_note(&[&ws[0]]).replace("\n10\n", "\n11\n");
        assert!(matches!(
            p.check(&note),
            Err(PolicyError::BadCosignature { .. })
        ));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let w = witness("a", 1).public().to_vkey();
        let w2 = witness("b", 2).public().to_vkey();
        let log = LogSigner::new(Origin::new("l").unwrap(), SigningKey::from_bytes(&[3; 32]))
            .verifier_key();
        let cases = [
            ("quorum none\nquorum none\n", 2),
            ("quorum x\n", 1),
            (&format!("witness none {w}\nquorum none\n"), 1),
            (&format!("witness a {w}\nwitness b {w}\nquorum a\n"), 2),
            (&format!("witness a {w}\nwitness a {w2}\nquorum a\n"), 2),
            (&format!("witness a {w}\ngroup g 2 a\nquorum g\n"), 2),
            (&format!("witness a {w}\ngroup g 0 a\nquorum g\n"), 2),
            (&format!("witness a {w}\ngroup g any a a\nquorum g\n"), 2),
            (&format!("witness a {w}\ngroup g any none\nquorum g\n"), 2),
            ("group g any h\nquorum none\n", 1),
            (&format!("witness a {log}\nquorum a\n"), 1),
            (&format!("log {w}\nquorum none\n"), 1),
            (&format!("log {log}\nlog {log}\nquorum none\n"), 2),
            ("\n# c\nfrobnicate x\nquorum none\n", 3),
            ("quorum none\r\n", 1),
        ];
        for (text, line) in cases {
            match WitnessPolicy::parse(text.as_bytes()) {
                Err(PolicyError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(
            WitnessPolicy::parse(b"# nothing\n").unwrap_err(),
            PolicyError::NoQuorum
        );
        let ok = format!(
            "  # comment\n\tlog {log} https://l.example\nwitness a\t{w}\ngroup g 1 a\nquorum g"
        );
        let p = WitnessPolicy::parse(ok.as_bytes()).unwrap();
        assert_eq!(p.logs().len(), 1);
        assert_eq!(p.logs()[0].url.as_deref(), Some("https://l.example"));
        assert!(p.covers_log(&p.logs()[0].verifier));
    }
}
