//! The explorer's one search box: what a typed query means.
//!
//! | typed                                   | searched                                           |
//! |-----------------------------------------|----------------------------------------------------|
//! | `123`, `#123`, `index:123`              | the entry at log index 123 (the entry page)        |
//! | `org/model`                             | declarations named `org/model` (Search `name`)     |
//! | `org/model@1.2`                         | that name and version (Search `name_version`)      |
//! | 64 hex digits, or `sha256:` and them    | the digest as a subject, a manifest file, a publisher key id, a training dataset, and as a leaf hash |
//! | `subject:HEX`, `file:HEX`, `key:HEX`, `trained-on:HEX`, `leaf:HEX` | only that one                   |
//! | `name:TEXT`                             | TEXT as a name even if it is all digits            |
//!
//! Names and `name@version` go through the same rules as the gRPC Search request
//! ([`Query::name`], [`Query::name_version`]), so the box finds what Search finds. Hex is read
//! in either letter case. This module does no I/O.

use crate::server::search::{Query, SearchError};

/// A parsed search box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoxQuery {
    /// A log index: the entry itself.
    Index(u64),
    /// Index terms searched together (their union), and possibly a leaf hash.
    Terms {
        terms: Vec<Query>,
        leaf_hash: Option<[u8; 32]>,
    },
}

/// Why a search box could not be read.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("type a name (org/model), name@version, a SHA-256 digest, a publisher key id or a log index")]
    Empty,
    #[error("{0}")]
    Search(#[from] SearchError),
    #[error("{what} must be 64 hex digits (a SHA-256 digest)")]
    Hex { what: &'static str },
    #[error("{0:?} is not a log index")]
    Index(String),
    #[error("a search is at most {MAX_QUERY_CHARS} characters")]
    TooLong,
}

/// Longest search box text read: a name is at most 200 characters, a version at most
/// what fits in a leaf; nothing searched is longer than this.
pub const MAX_QUERY_CHARS: usize = 1024;

impl BoxQuery {
    /// Reads what was typed.
    ///
    /// # Errors
    /// [`QueryError`] saying what the box takes.
    pub fn parse(text: &str) -> Result<BoxQuery, QueryError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(QueryError::Empty);
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let digest_terms = |d: [u8; 32]| BoxQuery::Terms {
            terms: vec![
                Query::SubjectDigest(d),
                Query::FileDigest(d),
                Query::PublisherKey(crate::admission::keys::KeyId(d)),
                Query::TrainedOn(d),
            ],
            leaf_hash: Some(d),
        };
        let one = |q: Query| BoxQuery::Terms {
            terms: vec![q],
            leaf_hash: None,
        };
        if let Some((prefix, rest)) = text.split_once(':') {
            let rest = rest.trim();
            let hex = |what| hex32(rest).ok_or(QueryError::Hex { what });
            match prefix.to_ascii_lowercase().as_str() {
                "index" => return index(rest),
                "name" => {
                    return Ok(one(if rest.contains('@') {
                        Query::name_version(rest)?
                    } else {
                        Query::name(rest)?
                    }))
                }
                "sha256" => return Ok(digest_terms(hex("a sha256: digest")?)),
                "subject" => return Ok(one(Query::SubjectDigest(hex("a subject digest")?))),
                "file" => return Ok(one(Query::FileDigest(hex("a file digest")?))),
                "key" => {
                    return Ok(one(Query::PublisherKey(crate::admission::keys::KeyId(
                        hex("a publisher key id")?,
                    ))))
                }
                "trained-on" => return Ok(one(Query::TrainedOn(hex("a dataset digest")?))),
                "leaf" => {
                    return Ok(BoxQuery::Terms {
                        terms: Vec::new(),
                        leaf_hash: Some(hex("a leaf hash")?),
                    })
                }
                _ => {}
            }
        }
        if let Some(rest) = text.strip_prefix('#') {
            return index(rest);
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return index(text);
        }
        if let Some(d) = hex32(text) {
            return Ok(digest_terms(d));
        }
        Ok(one(if text.contains('@') {
            Query::name_version(text)?
        } else {
            Query::name(text)?
        }))
    }
}

fn index(text: &str) -> Result<BoxQuery, QueryError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::Index(text.to_string()));
    }
    text.parse()
        .map(BoxQuery::Index)
        .map_err(|_| QueryError::Index(text.to_string()))
}

/// 64 hex digits, either case.
fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::keys::KeyId;

    #[test]
    fn each_form_is_read() {
        let d = [0xab; 32];
        let hex = "ab".repeat(32);
        assert_eq!(BoxQuery::parse(" 42 ").unwrap(), BoxQuery::Index(42));
        assert_eq!(BoxQuery::parse("#7").unwrap(), BoxQuery::Index(7));
        assert_eq!(BoxQuery::parse("index:0").unwrap(), BoxQuery::Index(0));
        assert_eq!(
            BoxQuery::parse("org/model").unwrap(),
            BoxQuery::Terms {
                terms: vec![Query::Name("org/model".into())],
                leaf_hash: None
            }
        );
        assert_eq!(
            BoxQuery::parse("org/model@1.2@rc").unwrap(),
            BoxQuery::Terms {
                terms: vec![Query::NameVersion {
                    name: "org/model".into(),
                    version: "1.2@rc".into()
                }],
                leaf_hash: None
            }
        );
        let all = BoxQuery::Terms {
            terms: vec![
                Query::SubjectDigest(d),
                Query::FileDigest(d),
                Query::PublisherKey(KeyId(d)),
                Query::TrainedOn(d),
            ],
            leaf_hash: Some(d),
        };
        assert_eq!(BoxQuery::parse(&hex).unwrap(), all);
        assert_eq!(BoxQuery::parse(&hex.to_uppercase()).unwrap(), all);
        assert_eq!(BoxQuery::parse(&format!("sha256:{hex}")).unwrap(), all);
        assert_eq!(
            BoxQuery::parse(&format!("key:{hex}")).unwrap(),
            BoxQuery::Terms {
                terms: vec![Query::PublisherKey(KeyId(d))],
                leaf_hash: None
            }
        );
        assert_eq!(
            BoxQuery::parse("name:123").unwrap(),
            BoxQuery::Terms {
                terms: vec![Query::Name("123".into())],
                leaf_hash: None
            }
        );
    }

    #[test]
    fn what_cannot_be_searched_is_refused_with_a_reason() {
        assert!(matches!(BoxQuery::parse("  "), Err(QueryError::Empty)));
        assert!(matches!(
            BoxQuery::parse("99999999999999999999999"),
            Err(QueryError::Index(_))
        ));
        assert!(matches!(BoxQuery::parse("#x"), Err(QueryError::Index(_))));
        assert!(matches!(
            BoxQuery::parse("sha256:abc"),
            Err(QueryError::Hex { .. })
        ));
        let err = BoxQuery::parse("<script>alert(1)</script>").unwrap_err();
        assert!(
            matches!(err, QueryError::Search(SearchError::Name(_))),
            "{err}"
        );
        assert!(matches!(
            BoxQuery::parse("org/m@"),
            Err(QueryError::Search(SearchError::NameVersion(_)))
        ));
        assert!(matches!(
            BoxQuery::parse("org/m\u{1b}"),
            Err(QueryError::Search(SearchError::ControlCharacter { .. }))
        ));
        assert!(matches!(
            BoxQuery::parse(&"a".repeat(2000)),
            Err(QueryError::TooLong)
        ));
    }
}
