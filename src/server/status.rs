//! The one place where errors of every layer become gRPC status codes.
//!
//! Client mistakes get the code that says what to do (INVALID_ARGUMENT: fix the request;
//! OUT_OF_RANGE: ask again later or lower; NOT_FOUND; RESOURCE_EXHAUSTED: smaller or later) and a
//! message naming the field and the value. Server-side failures are logged in full and answered
//! with a short message that leaks no internals.

use tonic::Status;

use crate::admission::dsse::DsseError;
use crate::server::prover::ProofError;
use crate::server::sequencer::SequencerError;
use crate::server::storage::StorageError;

/// An rpc's failure, by the gRPC code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Unavailable(String),
    /// A server-side failure; the string is logged, not returned.
    #[error("{0}")]
    Internal(String),
}

impl From<DsseError> for ApiError {
    fn from(e: DsseError) -> Self {
        ApiError::InvalidArgument(e.to_string())
    }
}

/// Every admission rule is the submitter's to fix.
impl From<crate::admission::AdmissionError> for ApiError {
    fn from(e: crate::admission::AdmissionError) -> Self {
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
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError::Internal(format!("storage: {e}"))
    }
}

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Status {
        match e {
            ApiError::InvalidArgument(m) => Status::invalid_argument(m),
            ApiError::OutOfRange(m) => Status::out_of_range(m),
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Unavailable(m) => Status::unavailable(m),
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

    #[test]
    fn proof_errors_map_to_actionable_codes() {
        let code = |e: ProofError| Status::from(ApiError::from(e)).code();
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
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let s = Status::from(ApiError::Internal("rocksdb: /secret/path is broken".into()));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("secret"));
    }
}
