//! The one place where errors of every layer become gRPC status codes.
//!
//! Client mistakes get the code that says what to do (INVALID_ARGUMENT: fix the request;
//! OUT_OF_RANGE: ask again later or lower; NOT_FOUND; RESOURCE_EXHAUSTED: smaller or later) and a
//! message naming the field and the value. Server-side failures are logged in full and answered
//! with a short message that leaks no internals.
//!
//! Every layer has its own error enum ([`RequestError`], [`SearchError`], [`ProofError`],
//! [`SequencerError`], [`StorageError`], [`TailError`], [`DsseError`], [`AdmissionError`]); the
//! `From` impls below are the whole table from those to codes, and the service only writes `?`.
//! This module defines no layer's errors and does no I/O.

use tonic::Status;

use crate::admission::declaration::DeclarationError;
use crate::admission::dsse::DsseError;
use crate::admission::keys::KeyError;
use crate::admission::AdmissionError;
use crate::server::prover::ProofError;
use crate::server::request::RequestError;
use crate::server::search::SearchError;
use crate::server::sequencer::SequencerError;
use crate::server::storage::StorageError;
use crate::server::tail::TailError;

/// An rpc's failure, by the gRPC code it maps to: the middle of the table, between a layer's
/// error (`From<XError> for ApiError` picks the code) and the [`Status`] sent (`From<ApiError>`
/// logs internal failures and replaces their message).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// RESOURCE_EXHAUSTED with the wait in `grpc-retry-pushback-ms`.
    #[error(transparent)]
    RateLimited(#[from] crate::server::ratelimit::Limited),
    /// A server-side failure; the string is logged, not returned.
    #[error("{0}")]
    Internal(String),
}

impl From<DsseError> for ApiError {
    fn from(e: DsseError) -> Self {
        ApiError::InvalidArgument(e.to_string())
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::StartPastSize { .. } => ApiError::OutOfRange(e.to_string()),
            RequestError::EmptyRange { .. } | RequestError::NoLeaf => {
                ApiError::InvalidArgument(e.to_string())
            }
            RequestError::EnvelopeTooLarge { .. }
            | RequestError::TooManyTailStreams(_)
            | RequestError::TooManyTailStreamsFromAddress(_) => {
                ApiError::ResourceExhausted(e.to_string())
            }
            RequestError::NoWitnessPolicy => ApiError::FailedPrecondition(e.to_string()),
            RequestError::NotWitnessedYet => ApiError::NotFound(e.to_string()),
            RequestError::ClientCertificateRequired => ApiError::Unauthenticated(e.to_string()),
        }
    }
}

/// Every admission rule is the submitter's to fix: a list or a key text longer than admission
/// reads, or an entry longer than a log entry, is RESOURCE_EXHAUSTED (smaller, like an envelope
/// over the limit, and as the sequencer answers for a leaf too long), the rest INVALID_ARGUMENT.
impl From<AdmissionError> for ApiError {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::Declaration(DeclarationError::TooMany { .. })
            | AdmissionError::LeafTooLarge(_)
            | AdmissionError::Envelope(DsseError::Key {
                reason: KeyError::PemTooLong { .. },
                ..
            }) => ApiError::ResourceExhausted(e.to_string()),
            _ => ApiError::InvalidArgument(e.to_string()),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        ApiError::InvalidArgument(e.to_string())
    }
}

impl From<ProofError> for ApiError {
    fn from(e: ProofError) -> Self {
        use ProofError::*;
        match e {
            IndexOutOfRange { .. } | TreeSizeTooLarge { .. } | LeafNotInTree { .. } => {
                ApiError::OutOfRange(e.to_string())
            }
            SizeOrder { .. } | EmptyFromSize | MalformedLeafHash(_) => {
                ApiError::InvalidArgument(e.to_string())
            }
            UnknownLeafHash(_) => ApiError::NotFound(e.to_string()),
            Storage(s) => s.into(),
            Merkle(m) => ApiError::Internal(format!("proof: {m}")),
        }
    }
}

impl From<SequencerError> for ApiError {
    fn from(e: SequencerError) -> Self {
        match e {
            SequencerError::Unavailable(m) => ApiError::Unavailable(format!(
                "the log is not accepting writes ({m}); retrying is safe: a resubmission is deduplicated"
            )),
            // Smaller, as RESOURCE_EXHAUSTED says, like an envelope over the configured limit.
            SequencerError::LeafTooLarge(_) => ApiError::ResourceExhausted(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::Internal(format!("storage: {e}"))
    }
}

impl From<TailError> for ApiError {
    fn from(e: TailError) -> Self {
        match e {
            TailError::ShuttingDown => ApiError::Unavailable(e.to_string()),
            TailError::Stalled(_) => ApiError::ResourceExhausted(e.to_string()),
            TailError::Storage(s) => s.into(),
            TailError::Task(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// A Tail stream's last item.
impl From<TailError> for Status {
    fn from(e: TailError) -> Status {
        ApiError::from(e).into()
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::InvalidArgument(m) => Status::invalid_argument(m),
            ApiError::OutOfRange(m) => Status::out_of_range(m),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Unavailable(m) => Status::unavailable(m),
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::RateLimited(l) => {
                let mut status = Status::resource_exhausted(l.to_string());
                if let Ok(ms) = l.retry_after.as_millis().to_string().parse() {
                    status.metadata_mut().insert("grpc-retry-pushback-ms", ms);
                }
                status
            }
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::internal(
                    "internal server error; the log's operator has the details in its log",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn code(e: impl Into<ApiError>) -> Code {
        Status::from(e.into()).code()
    }

    #[test]
    fn request_errors_map_to_actionable_codes() {
        assert_eq!(
            code(RequestError::StartPastSize { start: 3, size: 3 }),
            Code::OutOfRange
        );
        assert_eq!(
            code(RequestError::EmptyRange { start: 2, end: 2 }),
            Code::InvalidArgument
        );
        assert_eq!(code(RequestError::NoLeaf), Code::InvalidArgument);
        assert_eq!(
            code(RequestError::EnvelopeTooLarge { size: 9, limit: 8 }),
            Code::ResourceExhausted
        );
        let busy = Status::from(ApiError::from(RequestError::TooManyTailStreams(7)));
        assert_eq!(busy.code(), Code::ResourceExhausted);
        assert!(busy.message().contains('7'), "{}", busy.message());
    }

    #[test]
    fn admission_caps_are_resource_exhausted_and_other_rules_invalid_arguments() {
        let over = Status::from(ApiError::from(AdmissionError::Declaration(
            DeclarationError::TooMany {
                path: "$.predicate.trainingData".into(),
                count: 5000,
                limit: 1024,
            },
        )));
        assert_eq!(over.code(), Code::ResourceExhausted);
        for want in ["$.predicate.trainingData", "5000", "at most 1024"] {
            assert!(over.message().contains(want), "{}", over.message());
        }
        let long_key = Status::from(ApiError::from(AdmissionError::Envelope(DsseError::Key {
            index: 1,
            reason: KeyError::PemTooLong {
                len: 5000,
                limit: 4096,
            },
        })));
        assert_eq!(long_key.code(), Code::ResourceExhausted);
        assert!(
            long_key.message().contains("publisher key 1") && long_key.message().contains("4096"),
            "{}",
            long_key.message()
        );
        let too_long = Status::from(ApiError::from(AdmissionError::LeafTooLarge(
            crate::entry::LeafTooLarge { size: 65_536 },
        )));
        let at_sequencer = Status::from(ApiError::from(SequencerError::from(
            crate::entry::LeafTooLarge { size: 65_536 },
        )));
        assert_eq!(
            (too_long.code(), too_long.message()),
            (at_sequencer.code(), at_sequencer.message())
        );
        assert_eq!(
            code(AdmissionError::Envelope(DsseError::Key {
                index: 0,
                reason: KeyError::Pem("x"),
            })),
            Code::InvalidArgument
        );
        assert_eq!(
            code(AdmissionError::Declaration(DeclarationError::Invalid {
                path: "$.x".into(),
                reason: "y".into(),
            })),
            Code::InvalidArgument
        );
    }

    #[test]
    fn search_errors_are_invalid_arguments() {
        assert_eq!(code(SearchError::NoQuery), Code::InvalidArgument);
        assert_eq!(code(SearchError::PageToken), Code::InvalidArgument);
        assert_eq!(code(SearchError::PageSize(5000)), Code::InvalidArgument);
    }

    #[test]
    fn proof_errors_map_to_actionable_codes() {
        assert_eq!(
            code(ProofError::IndexOutOfRange {
                index: 5,
                tree_size: 5
            }),
            Code::OutOfRange
        );
        assert_eq!(
            code(ProofError::TreeSizeTooLarge {
                requested: 9,
                latest: 5
            }),
            Code::OutOfRange
        );
        assert_eq!(
            code(ProofError::LeafNotInTree {
                leaf_hash: crate::tlog::merkle::EMPTY_HASH,
                index: 5,
                tree_size: 3
            }),
            Code::OutOfRange
        );
        assert_eq!(code(ProofError::EmptyFromSize), Code::InvalidArgument);
        assert_eq!(
            code(ProofError::SizeOrder {
                from_size: 3,
                to_size: 2
            }),
            Code::InvalidArgument
        );
        assert_eq!(
            code(ProofError::MalformedLeafHash(3)),
            Code::InvalidArgument
        );
        assert_eq!(
            code(ProofError::UnknownLeafHash(crate::tlog::merkle::EMPTY_HASH)),
            Code::NotFound
        );
        assert_eq!(
            code(ProofError::Storage(StorageError::Corrupt("x".into()))),
            Code::Internal
        );
    }

    #[test]
    fn writes_refused_after_a_stop_are_unavailable_and_say_retry_is_safe() {
        let s = Status::from(ApiError::from(SequencerError::Unavailable(
            "the sequencer has stopped".into(),
        )));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s.message().contains("deduplicated"), "{}", s.message());
        assert_eq!(
            code(SequencerError::Inconsistent("root".into())),
            Code::Internal
        );
        assert_eq!(code(TailError::ShuttingDown), Code::Unavailable);
    }

    #[test]
    fn a_leaf_over_the_tiles_limit_is_resource_exhausted_and_names_the_limit() {
        let s = Status::from(ApiError::from(SequencerError::from(
            crate::entry::LeafTooLarge { size: 65_536 },
        )));
        assert_eq!(s.code(), Code::ResourceExhausted);
        for want in [
            "65536 bytes",
            "at most 65535 bytes",
            "tlog-tiles",
            "detachedManifest",
        ] {
            assert!(
                s.message().contains(want),
                "{want:?} not in {}",
                s.message()
            );
        }
    }

    #[test]
    fn internal_errors_do_not_leak() {
        for e in [
            ApiError::Internal("rocksdb: /secret/path is broken".into()),
            ApiError::from(StorageError::Corrupt("/secret/path".into())),
            ApiError::from(TailError::Storage(StorageError::Corrupt(
                "/secret/path".into(),
            ))),
            ApiError::from(SequencerError::Storage(StorageError::Corrupt(
                "/secret/path".into(),
            ))),
        ] {
            let s = Status::from(e);
            assert_eq!(s.code(), Code::Internal);
            assert!(!s.message().contains("secret"), "{}", s.message());
        }
    }
}
