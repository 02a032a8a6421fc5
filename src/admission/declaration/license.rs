//! SPDX licence expressions ([`LicenseExpression`]), checked for syntax by
//! recursive descent. Not here: checking identifiers against the SPDX
//! licence list.

use std::fmt;
use std::str::FromStr;

use super::{invalid, shown, DeclarationError, MAX_LICENSE_DEPTH};

/// An SPDX license expression (SPDX 2.3 Annex D; SPDX 3.0 "SimpleLicensing"),
/// checked for syntax, or `NOASSERTION` or `NONE` on its own.
///
/// Accepted: license ids (`MIT`, `Apache-2.0`, any case), `id+`,
/// `LicenseRef-x` and `DocumentRef-d:LicenseRef-x`, joined by `AND` and `OR`
/// (upper case; `AND` binds tighter), `WITH` an exception id or
/// `AdditionRef-x` after a simple license, and parentheses (at most
/// [`MAX_LICENSE_DEPTH`] deep). Tokens are separated by spaces. Ids are not
/// checked against the SPDX license list.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LicenseExpression(String);

impl LicenseExpression {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for LicenseExpression {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<LicenseExpression, DeclarationError> {
        check_license(s).map_err(|why| {
            invalid(
                "",
                format!("{} is not an SPDX license expression: {why}", shown(s)),
            )
        })?;
        Ok(LicenseExpression(s.to_owned()))
    }
}

impl fmt::Display for LicenseExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LicenseExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LicenseExpression({:?})", self.0)
    }
}

/// Special values that stand for a whole license expression.
const LICENSE_SPECIAL: [&str; 2] = ["NOASSERTION", "NONE"];

fn check_license(s: &str) -> Result<(), String> {
    if LICENSE_SPECIAL.contains(&s) {
        return Ok(());
    }
    if s.is_empty() {
        return Err("it is empty (write NOASSERTION if the license is unknown)".into());
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return Err("it starts or ends with a space".into());
    }
    let tokens = license_tokens(s)?;
    let mut parser = LicenseParser { tokens, next: 0 };
    parser.or_expression(0)?;
    match parser.peek() {
        None => Ok(()),
        Some("WITH") => Err("unexpected \"WITH\": a license takes at most one exception".into()),
        Some(op) if ["and", "or", "with"].contains(&op.to_ascii_lowercase().as_str()) => {
            Err(operand_error(Some(op), ""))
        }
        Some(token) => Err(format!(
            "unexpected {}: join licenses with AND or OR, and exceptions with WITH",
            shown(token)
        )),
    }
}

/// Splits an expression into `(`, `)` and words, refusing unexpected characters.
fn license_tokens(s: &str) -> Result<Vec<&str>, String> {
    let mut tokens = Vec::new();
    let mut word_start = None;
    for (i, c) in s.char_indices() {
        let word_char = c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+' | ':');
        if word_char {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(start) = word_start.take() {
            tokens.push(&s[start..i]);
        }
        match c {
            ' ' => {}
            '(' | ')' => tokens.push(&s[i..i + 1]),
            _ => {
                return Err(format!(
                    "character {} (U+{:04X}) is not allowed; license ids use A-Z a-z 0-9 - . \
                     and expressions use spaces, parentheses, AND, OR and WITH",
                    shown(&c.to_string()),
                    c as u32
                ))
            }
        }
    }
    if let Some(start) = word_start {
        tokens.push(&s[start..]);
    }
    Ok(tokens)
}

/// Recursive descent over the SPDX grammar, operators by precedence:
/// `WITH` binds tightest, then `AND`, then `OR`.
struct LicenseParser<'a> {
    tokens: Vec<&'a str>,
    next: usize,
}

impl<'a> LicenseParser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.next).copied()
    }

    fn take(&mut self) -> Option<&'a str> {
        let token = self.peek();
        self.next += 1;
        token
    }

    fn or_expression(&mut self, depth: usize) -> Result<(), String> {
        self.and_expression(depth)?;
        while self.peek() == Some("OR") {
            self.next += 1;
            self.and_expression(depth)?;
        }
        Ok(())
    }

    fn and_expression(&mut self, depth: usize) -> Result<(), String> {
        self.operand(depth)?;
        while self.peek() == Some("AND") {
            self.next += 1;
            self.operand(depth)?;
        }
        Ok(())
    }

    /// A parenthesised expression, or a simple expression with an optional
    /// `WITH` exception.
    fn operand(&mut self, depth: usize) -> Result<(), String> {
        let token = self.take();
        if token == Some("(") {
            if depth >= MAX_LICENSE_DEPTH {
                return Err(format!(
                    "parentheses are nested more than {MAX_LICENSE_DEPTH} deep"
                ));
            }
            self.or_expression(depth + 1)?;
            return match self.take() {
                Some(")") => self.refuse_with_after_parenthesis(),
                other => Err(operand_error(other, "\")\"")),
            };
        }
        check_simple_license(token)?;
        if self.peek() == Some("WITH") {
            self.next += 1;
            check_exception(self.take())?;
        }
        Ok(())
    }

    fn refuse_with_after_parenthesis(&self) -> Result<(), String> {
        match self.peek() {
            Some("WITH") => Err("WITH must follow a single license, not a parenthesis".into()),
            _ => Ok(()),
        }
    }
}

/// An `idstring` (SPDX: `1*(ALPHA / DIGIT / "-" / ".")`).
fn is_idstring(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `prefix-idstring`, optionally after `DocumentRef-idstring:`.
fn is_reference(word: &str, prefix: &str) -> bool {
    let local = match word.strip_prefix("DocumentRef-") {
        Some(rest) => match rest.split_once(':') {
            Some((document, local)) if is_idstring(document) => local,
            _ => return false,
        },
        None => word,
    };
    local.strip_prefix(prefix).is_some_and(is_idstring)
}

fn operand_error(token: Option<&str>, wanted: &str) -> String {
    match token {
        Some(op @ ("AND" | "OR" | "WITH" | ")")) => {
            format!("expected {wanted}, found {}", shown(op))
        }
        Some(op) if ["and", "or", "with"].contains(&op.to_ascii_lowercase().as_str()) => {
            format!(
                "operators are upper case: write {}",
                op.to_ascii_uppercase()
            )
        }
        Some(special) if LICENSE_SPECIAL.contains(&special) => {
            format!("{special} must be the whole expression, not part of one")
        }
        None => format!("expected {wanted}, found the end of the expression"),
        Some(word) => format!("{} is not {wanted}", shown(word)),
    }
}

/// `license-id`, `license-id+` or a `LicenseRef`.
fn check_simple_license(token: Option<&str>) -> Result<(), String> {
    const WANTED: &str = "a license id or LicenseRef-...";
    let word = match token {
        Some(w) if !["AND", "OR", "WITH", "(", ")"].contains(&w) => w,
        _ => return Err(operand_error(token, WANTED)),
    };
    let is_operator_typo = ["and", "or", "with"].contains(&word.to_ascii_lowercase().as_str());
    if is_operator_typo || LICENSE_SPECIAL.contains(&word) {
        return Err(operand_error(token, WANTED));
    }
    let plain = word.strip_suffix('+').unwrap_or(word);
    let ok = if word.contains("LicenseRef-") {
        is_reference(word, "LicenseRef-")
    } else {
        is_idstring(plain) && !plain.starts_with("DocumentRef-")
    };
    if ok {
        Ok(())
    } else {
        Err(operand_error(token, WANTED))
    }
}

/// An exception id or an `AdditionRef` after `WITH`.
fn check_exception(token: Option<&str>) -> Result<(), String> {
    const WANTED: &str = "an exception id or AdditionRef-... after WITH";
    let ok = match token {
        Some(w) if w.contains("AdditionRef-") || w.starts_with("DocumentRef-") => {
            is_reference(w, "AdditionRef-")
        }
        Some(w) => is_idstring(w) && !["AND", "OR", "WITH"].contains(&w),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(operand_error(token, WANTED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration::tests::*;
    use serde_json::json;

    // ---- Licenses.

    const GOOD_LICENSES: &[&str] = &[
        "MIT",
        "Apache-2.0",
        "apache-2.0",
        "GPL-2.0-or-later",
        "GPL-2.0+",
        "CC-BY-4.0",
        "NOASSERTION",
        "NONE",
        "LicenseRef-acme-model-license-1.0",
        "DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2",
        "MIT OR Apache-2.0",
        "MIT AND Apache-2.0 OR BSD-3-Clause",
        "(MIT OR Apache-2.0) AND CC-BY-4.0",
        "MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)",
        "GPL-2.0-only WITH Classpath-exception-2.0",
        "Apache-2.0 WITH LLVM-exception OR MIT",
        "GPL-3.0-or-later WITH AdditionRef-my-exception",
        "GPL-3.0+ WITH DocumentRef-d:AdditionRef-x",
        "LicenseRef-x WITH Classpath-exception-2.0",
        "((MIT))",
        "(MIT)AND(Apache-2.0)",
        "MIT  OR  Apache-2.0",
    ];

    const BAD_LICENSES: &[(&str, &str)] = &[
        ("", "it is empty"),
        (" MIT", "starts or ends with a space"),
        ("MIT ", "starts or ends with a space"),
        ("MIT OR", "found the end of the expression"),
        (
            "OR MIT",
            "expected a license id or LicenseRef-..., found \"OR\"",
        ),
        ("MIT AND", "found the end"),
        ("MIT and Apache-2.0", "operators are upper case: write AND"),
        ("mit or apache-2.0", "operators are upper case: write OR"),
        ("MIT OR and", "operators are upper case: write AND"),
        (
            "MIT Apache-2.0",
            "unexpected \"Apache-2.0\": join licenses with AND or OR",
        ),
        ("Apache 2.0", "unexpected \"2.0\""),
        ("(MIT", "expected \")\", found the end of the expression"),
        ("MIT)", "unexpected \")\""),
        ("()", "found \")\""),
        (
            "MIT WITH",
            "an exception id or AdditionRef-... after WITH, found the end",
        ),
        ("MIT WITH OR", "after WITH, found \"OR\""),
        (
            "(MIT OR BSD-3-Clause) WITH Classpath-exception-2.0",
            "WITH must follow a single license",
        ),
        ("MIT WITH A WITH B", "at most one exception"),
        ("LicenseRef-", "\"LicenseRef-\" is not a license id"),
        ("LicenseRef-x+", "is not a license id"),
        ("DocumentRef-x:MIT", "is not a license id"),
        ("DocumentRef-:LicenseRef-x", "is not a license id"),
        ("MIT++", "is not a license id"),
        ("+", "is not a license id"),
        ("MIT OR NONE", "NONE must be the whole expression"),
        (
            "NOASSERTION AND MIT",
            "NOASSERTION must be the whole expression",
        ),
        ("(NONE)", "NONE must be the whole expression"),
        ("MIT/Apache-2.0", "character \"/\" (U+002F)"),
        ("MIT, Apache-2.0", "character \",\""),
        ("MIT\tOR Apache-2.0", "(U+0009)"),
        ("a_b", "(U+005F)"),
        (
            "MIT WITH AdditionRef-",
            "\"AdditionRef-\" is not an exception id",
        ),
    ];

    #[test]
    fn good_licenses_are_accepted() {
        for license in GOOD_LICENSES {
            let parsed: LicenseExpression = license.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.as_str(), *license);
        }
        let nested = format!(
            "{}MIT{}",
            "(".repeat(MAX_LICENSE_DEPTH),
            ")".repeat(MAX_LICENSE_DEPTH)
        );
        assert!(nested.parse::<LicenseExpression>().is_ok());
        let v = set(
            base("dataset"),
            "/predicate/sources/1/license",
            json!("NONE"),
        );
        accepted(&v);
    }

    #[test]
    fn bad_licenses_are_refused() {
        let pointers = [
            ("model", "/predicate/license"),
            ("dataset", "/predicate/sources/1/license"),
        ];
        for (bad, reason) in BAD_LICENSES {
            let err = bad.parse::<LicenseExpression>().unwrap_err();
            assert!(
                err.to_string()
                    .contains("is not an SPDX license expression"),
                "{err}"
            );
            assert!(err.to_string().contains(reason), "{bad:?}: {err}");
            for (example, pointer) in pointers {
                let v = set(base(example), pointer, json!(bad));
                refused(&v, &path_of(pointer), reason, bad);
            }
        }
    }

    #[test]
    fn license_nesting_is_bounded() {
        let depth = MAX_LICENSE_DEPTH + 1;
        let nested = format!("{}MIT{}", "(".repeat(depth), ")".repeat(depth));
        let err = nested.parse::<LicenseExpression>().unwrap_err();
        assert!(
            err.to_string().contains("nested more than 16 deep"),
            "{err}"
        );
        let deep = format!("{}MIT{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(deep.parse::<LicenseExpression>().is_err());
    }
}
