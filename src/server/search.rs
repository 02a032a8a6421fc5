//! The search index: which terms an entry is found under, how a request's query becomes a key
//! prefix, and page tokens.
//!
//! The byte layout of index keys (`tag ‖ term ‖ index`) is the storage schema's
//! ([`schema::search_prefix`]); this module only says which tag and fields each [`Query`] has.
//! The keys are computed at admission and written by the sequencer in the same batch as the
//! entry, so the index cannot disagree with the log; `glasslog reindex` recomputes them from the
//! entries.
//!
//! This module does no I/O.

use base64::Engine;

use crate::admission::declaration::{control_reason, first_control, Declaration, Name};
use crate::admission::keys::KeyId;
use crate::proto::search_request::Query as ProtoQuery;
use crate::server::storage::schema::{self, SearchTerm};

/// One thing an entry can be found by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    Name(String),
    NameVersion { name: String, version: String },
    SubjectDigest([u8; 32]),
    FileDigest([u8; 32]),
    PublisherKey(KeyId),
    TrainedOn([u8; 32]),
}

/// Errors of a search request.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("set one query field: name, name_version, subject_digest, file_digest, publisher_key_id or trained_on_digest")]
    NoQuery,
    #[error("{field} must be a 32-byte SHA-256 digest, got {len} bytes")]
    DigestLength { field: &'static str, len: usize },
    #[error("name: {0}")]
    Name(String),
    /// A text query field holds a control character, which no logged name or version has.
    #[error("{field} {reason}")]
    ControlCharacter { field: &'static str, reason: String },
    #[error("name_version {0:?} must be NAME@VERSION, e.g. org/model@1.2")]
    NameVersion(String),
    #[error("page_size {0} is larger than the maximum of {MAX_PAGE_SIZE}")]
    PageSize(u32),
    #[error("page_token is not one this server issued")]
    PageToken,
}

/// Page size when the request gives 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page size a request may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

impl Query {
    /// Reads the query of a SearchRequest.
    ///
    /// A text field (a name, or `name_version`) is refused if it holds a control character,
    /// with the field and the code point named, as admission refuses such a version
    /// ([`first_control`]): a term admission cannot index is not worth a scan.
    ///
    /// # Errors
    /// No query, a control character, a malformed name or a digest that is not 32 bytes.
    pub fn from_proto(q: Option<ProtoQuery>) -> Result<Query, SearchError> {
        let digest = |field, b: Vec<u8>| {
            <[u8; 32]>::try_from(b.as_slice()).map_err(|_| SearchError::DigestLength {
                field,
                len: b.len(),
            })
        };
        Ok(match q.ok_or(SearchError::NoQuery)? {
            ProtoQuery::Name(n) => Query::name(&n)?,
            ProtoQuery::NameVersion(nv) => Query::name_version(&nv)?,
            ProtoQuery::SubjectDigest(d) => Query::SubjectDigest(digest("subject_digest", d)?),
            ProtoQuery::FileDigest(d) => Query::FileDigest(digest("file_digest", d)?),
            ProtoQuery::PublisherKeyId(d) => {
                Query::PublisherKey(KeyId(digest("publisher_key_id", d)?))
            }
            ProtoQuery::TrainedOnDigest(d) => Query::TrainedOn(digest("trained_on_digest", d)?),
        })
    }

    /// A query by name (`org/model`), refused if it holds a control character or is not a
    /// valid name. The rule Search's `name` field and the explorer's search box share.
    ///
    /// # Errors
    /// [`SearchError::ControlCharacter`] or [`SearchError::Name`].
    pub fn name(text: &str) -> Result<Query, SearchError> {
        Ok(Query::Name(valid_name(no_control("name", text)?)?))
    }

    /// A query by `NAME@VERSION` (split at the first `@`: names cannot contain one, a version
    /// may), as Search's `name_version` field takes it.
    ///
    /// # Errors
    /// [`SearchError::ControlCharacter`], [`SearchError::NameVersion`] (no `@`, or an empty
    /// version) or [`SearchError::Name`].
    pub fn name_version(text: &str) -> Result<Query, SearchError> {
        no_control("name_version", text)?;
        let (name, version) = text
            .split_once('@')
            .ok_or_else(|| SearchError::NameVersion(text.to_string()))?;
        if version.is_empty() {
            return Err(SearchError::NameVersion(text.to_string()));
        }
        Ok(Query::NameVersion {
            name: valid_name(name)?,
            version: version.to_string(),
        })
    }

    /// The key prefix shared by every index key of this query's term.
    pub fn prefix(&self) -> Vec<u8> {
        schema::search_prefix(&match self {
            Query::Name(n) => SearchTerm::Name(n.as_bytes()),
            Query::NameVersion { name, version } => SearchTerm::NameVersion {
                name: name.as_bytes(),
                version: version.as_bytes(),
            },
            Query::SubjectDigest(d) => SearchTerm::SubjectDigest(d),
            Query::FileDigest(d) => SearchTerm::FileDigest(d),
            Query::PublisherKey(k) => SearchTerm::PublisherKey(&k.0),
            Query::TrainedOn(d) => SearchTerm::TrainedOn(d),
        })
    }
}

/// `text` (of query field `field`) if it holds no control character.
fn no_control<'a>(field: &'static str, text: &'a str) -> Result<&'a str, SearchError> {
    match first_control(text) {
        Some((position, c)) => Err(SearchError::ControlCharacter {
            field,
            reason: control_reason(position, c),
        }),
        None => Ok(text),
    }
}

fn valid_name(n: &str) -> Result<String, SearchError> {
    n.parse::<Name>()
        .map(|n| n.as_str().to_string())
        .map_err(|e| SearchError::Name(e.to_string()))
}

/// Every index prefix an entry is found under: its signers' keys, and, for a declaration, its
/// name, name@version, subject digest, manifest file digests and training-data digests.
/// Repeated terms (a file digest listed twice) are indexed once. File digests are those of a
/// manifest in the statement: a detached manifest's files are unknown to the log.
pub fn index_prefixes(declaration: Option<&Declaration>, signers: &[KeyId]) -> Vec<Vec<u8>> {
    let mut queries: Vec<Query> = signers.iter().map(|k| Query::PublisherKey(*k)).collect();
    if let Some(d) = declaration {
        let name = d.name().as_str().to_string();
        queries.push(Query::Name(name.clone()));
        queries.push(Query::NameVersion {
            name,
            version: d.version().to_string(),
        });
        queries.push(Query::SubjectDigest(d.subject_digest().0));
        queries.extend(d.file_digests().into_iter().map(|f| Query::FileDigest(f.0)));
        queries.extend(d.trained_on().into_iter().map(|t| Query::TrainedOn(t.0)));
    }
    let mut prefixes: Vec<Vec<u8>> = queries.iter().map(Query::prefix).collect();
    prefixes.sort();
    prefixes.dedup();
    prefixes
}

/// Encodes the index a next page starts at. Opaque to clients; stays valid as the log grows
/// because it names a log index, not a position in a result set.
pub fn page_token(next_index: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(next_index.to_be_bytes())
}

/// Decodes a page token; the empty token is the first page.
///
/// # Errors
/// [`SearchError::PageToken`] for anything [`page_token`] did not produce.
pub fn parse_page_token(token: &str) -> Result<u64, SearchError> {
    if token.is_empty() {
        return Ok(0);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| SearchError::PageToken)?;
    Ok(u64::from_be_bytes(
        bytes.try_into().map_err(|_| SearchError::PageToken)?,
    ))
}

/// The page size a request asks for.
///
/// # Errors
/// [`SearchError::PageSize`] above [`MAX_PAGE_SIZE`].
pub fn page_size(requested: u32) -> Result<usize, SearchError> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE as usize),
        n if n > MAX_PAGE_SIZE => Err(SearchError::PageSize(n)),
        n => Ok(n as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_do_not_prefix_each_other() {
        let a = Query::Name("org/m".into()).prefix();
        let b = Query::Name("org/m2".into()).prefix();
        assert!(!b.starts_with(&a));
        let v1 = Query::NameVersion {
            name: "org/m".into(),
            version: "1".into(),
        }
        .prefix();
        let v10 = Query::NameVersion {
            name: "org/m".into(),
            version: "10".into(),
        }
        .prefix();
        assert!(!v10.starts_with(&v1));
    }

    #[test]
    fn queries_are_validated() {
        assert!(matches!(Query::from_proto(None), Err(SearchError::NoQuery)));
        assert!(matches!(
            Query::from_proto(Some(ProtoQuery::FileDigest(vec![1; 31]))),
            Err(SearchError::DigestLength { len: 31, .. })
        ));
        assert!(Query::from_proto(Some(ProtoQuery::Name("a//b".into()))).is_err());
        assert!(Query::from_proto(Some(ProtoQuery::NameVersion("org/m".into()))).is_err());
        assert!(Query::from_proto(Some(ProtoQuery::NameVersion("org/m@".into()))).is_err());
        assert_eq!(
            Query::from_proto(Some(ProtoQuery::NameVersion("org/m@1.2@rc".into()))).unwrap(),
            Query::NameVersion {
                name: "org/m".into(),
                version: "1.2@rc".into()
            }
        );
    }

    #[test]
    fn control_characters_in_queries_are_refused_naming_the_field() {
        let cases = [
            (
                ProtoQuery::NameVersion("org/m@2.0\u{0}".into()),
                "name_version contains U+0000 at character 9",
            ),
            (
                ProtoQuery::NameVersion("org/m\u{0}@2.0".into()),
                "name_version contains U+0000 at character 5",
            ),
            (
                ProtoQuery::NameVersion("org/m@\u{85}".into()),
                "name_version contains U+0085",
            ),
            (
                ProtoQuery::Name("org/m\u{0}".into()),
                "name contains U+0000 at character 5",
            ),
            (
                ProtoQuery::Name("\u{1b}org".into()),
                "name contains U+001B at character 0",
            ),
        ];
        for (query, message) in cases {
            let err = Query::from_proto(Some(query.clone())).unwrap_err();
            assert!(
                matches!(err, SearchError::ControlCharacter { .. }),
                "{query:?}: {err}"
            );
            assert!(err.to_string().starts_with(message), "{query:?}: {err}");
        }
        assert!(Query::from_proto(Some(ProtoQuery::NameVersion("org/m@2.0\u{a0}".into()))).is_ok());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        for n in [0u64, 1, 1 << 40, u64::MAX] {
            assert_eq!(parse_page_token(&page_token(n)).unwrap(), n);
        }
        assert_eq!(parse_page_token("").unwrap(), 0);
        assert!(parse_page_token("!!").is_err());
        assert!(parse_page_token("AAAA").is_err());
        assert_eq!(page_size(0).unwrap(), 100);
        assert!(page_size(1001).is_err());
    }
}
