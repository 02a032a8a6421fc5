//! The service's own checks on a request: what no lower layer validates (the range of a
//! GetEntries, the choice of leaf in GetInclusionProof, the envelope size limit, the Tail stream
//! cap), and their error.
//!
//! This module chooses no gRPC codes: [`RequestError`] is mapped in `status.rs` like every other
//! layer's error. It does no I/O.

use std::ops::Range;

/// A request refused by the service before it reaches storage, the prover or the sequencer.
/// Each message names the field and the value that made the request invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// GetEntries from an index the latest checkpoint does not cover (yet).
    #[error("start {start} is at or past the log's size {size}")]
    StartPastSize { start: u64, size: u64 },
    /// GetEntries with an empty or reversed range.
    #[error("end {end} must be greater than start {start}")]
    EmptyRange { start: u64, end: u64 },
    /// GetInclusionProof without a leaf.
    #[error("set either leaf.index or leaf.leaf_hash")]
    NoLeaf,
    /// A Submit whose envelope is over the configured limit (the leaf's own limit is the
    /// sequencer's: [`crate::server::sequencer::SequencerError::LeafTooLarge`]).
    #[error("envelope is {size} bytes; this log accepts envelopes of at most {limit} bytes")]
    EnvelopeTooLarge { size: usize, limit: usize },
    /// A witnessed checkpoint asked of a log without a witness policy.
    #[error(
        "this log has no witness policy, so no checkpoint is witnessed; ask with witnessed = false"
    )]
    NoWitnessPolicy,
    /// A witnessed checkpoint asked before any checkpoint met the policy.
    #[error("no checkpoint of this log has met its witness policy yet; try again later")]
    NotWitnessedYet,
    /// Every Tail stream slot is taken.
    #[error("this log serves at most {0} concurrent Tail streams; try again later")]
    TooManyTailStreams(usize),
    /// The client's address has every Tail stream slot it may hold.
    #[error("this log serves at most {0} concurrent Tail streams to one address; close one first")]
    TooManyTailStreamsFromAddress(usize),
    /// A Submit without a client certificate, on a log that authenticates publishers by one.
    #[error(
        "this log accepts submissions only over TLS with a client certificate from its \
         publishers' CA; reads need none"
    )]
    ClientCertificateRequired,
}

/// The entries a GetEntries of `[start, end)` is answered with, in a log of `size` entries: the
/// range clipped to `size`, so a client may ask past the end and receive what exists.
///
/// # Errors
/// [`RequestError::StartPastSize`] when `start >= size` (checked first: it says "ask later"),
/// [`RequestError::EmptyRange`] when `end <= start`.
pub fn entries_range(start: u64, end: u64, size: u64) -> Result<Range<u64>, RequestError> {
    if start >= size {
        return Err(RequestError::StartPastSize { start, size });
    }
    if end <= start {
        return Err(RequestError::EmptyRange { start, end });
    }
    Ok(start..end.min(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_ranges_are_clipped_and_checked_in_order() {
        assert_eq!(entries_range(2, 10, 5), Ok(2..5));
        assert_eq!(entries_range(0, 1, 5), Ok(0..1));
        assert_eq!(
            entries_range(5, 4, 5),
            Err(RequestError::StartPastSize { start: 5, size: 5 })
        );
        assert_eq!(
            entries_range(3, 3, 5),
            Err(RequestError::EmptyRange { start: 3, end: 3 })
        );
    }
}
