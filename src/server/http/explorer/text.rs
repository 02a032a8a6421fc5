//! Logged text made safe to show: every name, version, description and URI in the log is
//! written by whoever signed the entry, so it is treated as hostile here.
//!
//! - [`Shown`]: text for HTML element content. Escaped (`& < > " '`), isolated from the
//!   surrounding text in a `<bdi>` (HTML, "The bdi element"), and with every Unicode direction
//!   control and invisible format character wrapped in its own isolating `<bdi class="cp">`: the
//!   character stays in the page's text (so a copy, or the in-browser check comparing the
//!   statement text with the leaf, sees exactly what was logged) but it can reorder nothing
//!   outside its own empty box (UAX #9: an isolate ends every embedding and override started
//!   inside it), and the stylesheet shows its code point (`⟨U+202E⟩`) in its place.
//! - [`svg_label`]: text for SVG `<text>`, which has no `<bdi>`: those characters are replaced
//!   by their visible code points; the template's autoescaping then escapes the rest.
//! - [`safe_href`]: a logged URI is made a link only if its scheme is `https` or `http`
//!   (`javascript:`, `data:`, `vbscript:`, … are shown as text, never linked).
//! - [`script_json`]: JSON for a non-executable `<script type="application/json">` data block,
//!   with `<`, `>` and `&` written as `\u003c`, `\u003e`, `\u0026` so that no logged string can
//!   close the element (`</script>`) or open a comment (`<!--`); `JSON.parse` reads it back
//!   unchanged.

use std::fmt::{self, Write as _};

/// Whether `c` is a bidirectional formatting character (UAX #9 §2: LRE, RLE, PDF, LRO, RLO,
/// LRI, RLI, FSI, PDI, and the marks LRM, RLM, ALM) or an invisible format character that can
/// make two different strings look alike (zero-width space, non-joiner, joiner, word joiner,
/// byte order mark, soft hyphen) or a control character.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{00AD}'
    ) || (c.is_control() && !matches!(c, '\n' | '\t'))
}

/// Logged text for HTML element content; see the module documentation.
pub struct Shown<'a>(pub &'a str);

impl askama::filters::HtmlSafe for Shown<'_> {}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<bdi>")?;
        for c in self.0.chars() {
            if is_hidden(c) {
                write!(
                    f,
                    "<bdi class=\"cp\" data-cp=\"U+{code:04X}\" title=\"U+{code:04X}\">",
                    code = c as u32
                )?;
                escape_char(f, c)?;
                f.write_str("</bdi>")?;
            } else {
                escape_char(f, c)?;
            }
        }
        f.write_str("</bdi>")
    }
}

fn escape_char(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '&' => f.write_str("&amp;"),
        '<' => f.write_str("&lt;"),
        '>' => f.write_str("&gt;"),
        '"' => f.write_str("&#34;"),
        '\'' => f.write_str("&#39;"),
        // A NUL in an HTML document is a parse error the parser replaces; write it as a
        // character reference so the page says what the log holds.
        '\0' => f.write_str("&#xFFFD;"),
        c => f.write_char(c),
    }
}

/// `text` with every [`is_hidden`] character replaced by its code point in angle brackets
/// (`⟨U+202E⟩`), for SVG text; not escaped (the template escapes).
pub fn svg_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hidden(c) {
            let _ = write!(out, "\u{27E8}U+{:04X}\u{27E9}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` cut to at most `max` characters, with `…` at the end if it was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

/// `uri` if it may be a link target: its scheme is `https` or `http` (any letter case), so
/// following it can run no script. A logged [`crate::admission::declaration::Uri`] has no
/// whitespace or control characters, so no browser reads another scheme out of it; any other
/// string is checked the same way.
pub fn safe_href(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    let web = scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http");
    let clean = !uri.chars().any(|c| c.is_whitespace() || c.is_control());
    (web && clean && rest.starts_with("//") && rest.len() > 2).then_some(uri)
}

/// `value` as JSON safe inside a `<script type="application/json">` element.
pub fn script_json(value: &serde_json::Value) -> ScriptJson {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            // Line and paragraph separators are valid in JSON strings but ended string literals
            // in older JavaScript; written escaped they mean the same to JSON.parse.
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    ScriptJson(out)
}

/// JSON made safe by [`script_json`]; the template writes it unescaped.
pub struct ScriptJson(String);

impl askama::filters::HtmlSafe for ScriptJson {}

impl fmt::Display for ScriptJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_isolated() {
        let shown =
            Shown("<script>alert(1)</script> & \"x\" 'y' <img src=x onerror=alert(2)>").to_string();
        assert_eq!(
            shown,
            "<bdi>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;x&#34; &#39;y&#39; \
             &lt;img src=x onerror=alert(2)&gt;</bdi>"
        );
        assert!(!shown.contains("<script") && !shown.contains("<img"));
    }

    #[test]
    fn direction_controls_are_boxed_but_kept() {
        let shown = Shown("abc\u{202E}fed\u{2066}x").to_string();
        assert_eq!(
            shown,
            "<bdi>abc<bdi class=\"cp\" data-cp=\"U+202E\" title=\"U+202E\">\u{202E}</bdi>fed\
             <bdi class=\"cp\" data-cp=\"U+2066\" title=\"U+2066\">\u{2066}</bdi>x</bdi>"
        );
        for c in [
            '\u{200B}', '\u{200F}', '\u{061C}', '\u{FEFF}', '\u{2069}', '\u{1B}',
        ] {
            assert!(is_hidden(c), "U+{:04X}", c as u32);
        }
        for c in ['a', 'é', 'ا', '\n', ' ', '\u{2014}'] {
            assert!(!is_hidden(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn svg_labels_show_code_points() {
        assert_eq!(svg_label("v1\u{202E}gpj"), "v1\u{27E8}U+202E\u{27E9}gpj");
        assert_eq!(svg_label("<b>"), "<b>");
    }

    #[test]
    fn only_web_uris_are_links() {
        for ok in [
            "https://example.com/x",
            "HTTP://example.com",
            "https://a.b/c?d=<e>",
        ] {
            assert_eq!(safe_href(ok), Some(ok));
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "https:",
            "https:/x",
            "http:javascript:alert(1)",
            "java\tscript:alert(1)",
            " https://example.com",
            "//evil.example",
            "file:///etc/passwd",
            "mailto:a@b",
        ] {
            assert_eq!(safe_href(bad), None, "{bad}");
        }
    }

    #[test]
    fn script_json_cannot_end_its_element() {
        let v = serde_json::json!({"s": "</script><script>alert(1)</script><!-- & \u{2028}"});
        let out = script_json(&v).to_string();
        assert!(!out.contains('<') && !out.contains('>') && !out.contains('&'));
        let back: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abcdef", 6), "abcdef");
        assert_eq!(truncate("abcdefg", 6), "abcde\u{2026}");
        assert_eq!(truncate("ééééééé", 3), "éé\u{2026}");
    }
}
