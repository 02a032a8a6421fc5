//! The `glasslog.v1.TransparencyLog` service: request validation and proto ↔ domain conversion.
//!
//! Writes go to the sequencer; every read is answered from the latest published checkpoint
//! (durable and signed) and never waits for the writer.
//!
//! It chooses no status codes: every failure is a layer's error ([`RequestError`] for what only
//! the service checks) and becomes a status in `status.rs`.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use super::config::{Limits, MAX_REPLY_BYTES};
use super::metrics::{Metrics, Rpc};
use super::ratelimit::{self, Rates};
use super::request::{self, RequestError};
use super::status::ApiError;
use super::tail;
use super::transport::{Peer, PerAddress};
use crate::admission::keys::KeyCache;
use crate::admission::references::{Lookup, Target};
use crate::admission::{self, Policy};
use crate::entry::PendingEntry;
use crate::proto::transparency_log_server::TransparencyLog;
use crate::proto::{self, get_inclusion_proof_request::Leaf};
use crate::server::prover::{Inclusion, Prover};
use crate::server::search;
use crate::server::sequencer::{Announced, Published, Sequencer};
use crate::server::storage::{StorageError, Store};
use crate::server::witnessing::WitnessingHandle;

#[cfg(feature = "fault-injection")]
use super::faults;

/// The service state shared by every rpc.
pub struct LogService {
    pub(super) origin: String,
    pub(super) verifier_key: String,
    pub(super) store: Arc<Store>,
    pub(super) prover: Prover,
    pub(super) sequencer: Sequencer,
    pub(super) limits: Limits,
    pub(super) tail_permits: Arc<Semaphore>,
    /// Tail streams held per client address.
    pub(super) tail_per_address: Arc<PerAddress>,
    pub(super) shutdown: tokio::sync::watch::Receiver<bool>,
    /// Publisher keys already read, shared with the admission tasks on the blocking pool.
    pub(super) keys: Arc<KeyCache>,
    /// One permit per admission running on the blocking pool ([`admission_permits`]).
    pub(super) admission_permits: Arc<Semaphore>,
    /// The witnessed checkpoints, for a log run with a witness policy.
    pub(super) witnessing: Option<WitnessingHandle>,
    /// Submit requires a TLS client certificate (the listener's `tls_client_ca` verified it).
    pub(super) submit_needs_client_cert: bool,
    pub(super) rates: Arc<Rates>,
    /// Submit results, rpc durations and open Tail streams are counted here.
    pub(super) metrics: Arc<Metrics>,
}

/// The address a request came from; the unspecified address for one that came through no
/// listener of ours (none in practice), which then shares one allowance.
fn client_ip<T>(req: &Request<T>) -> IpAddr {
    req.extensions()
        .get::<Peer>()
        .map_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), |p| p.addr.ip())
}

impl LogService {
    /// Takes a read token of the request's address for `rpc`.
    fn admit_read<T>(&self, rpc: Rpc, req: &Request<T>) -> Result<(), ApiError> {
        if let Some(limit) = &self.rates.reads_per_ip {
            limit
                .check(&ratelimit::client_key(client_ip(req)))
                .map_err(|l| self.limited(rpc, l))?;
        }
        Ok(())
    }

    /// A refusal by a rate limit, counted under `rpc`.
    fn limited(&self, rpc: Rpc, l: ratelimit::Limited) -> ApiError {
        self.metrics.rate_limited(rpc.name());
        l.into()
    }

    /// Runs a unary rpc's handler and records its duration under `rpc`.
    async fn timed<T>(&self, rpc: Rpc, handler: impl std::future::Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let result = handler.await;
        self.metrics.rpc_duration(rpc, started.elapsed());
        result
    }

    /// A unary read, as every read rpc is answered: admitted by the per-address read limit,
    /// then `handler` (which does no waiting: reads are served from RocksDB and the head in
    /// memory) on the request's message, its duration recorded under `rpc`.
    fn read_rpc<Q, A>(
        &self,
        rpc: Rpc,
        req: Request<Q>,
        handler: fn(&Self, Q) -> Result<A, ApiError>,
    ) -> Result<Response<A>, Status> {
        self.admit_read(rpc, &req)?;
        let started = std::time::Instant::now();
        let result = handler(self, req.into_inner());
        self.metrics.rpc_duration(rpc, started.elapsed());
        Ok(Response::new(result?))
    }

    /// GetLogInfo: the origin and verifier key, fixed for the server's life.
    #[allow(clippy::unnecessary_wraps)] // the shape of every read handler
    fn log_info(&self, _: proto::GetLogInfoRequest) -> Result<proto::LogInfo, ApiError> {
        Ok(proto::LogInfo {
            origin: self.origin.clone(),
            verifier_key: self.verifier_key.clone(),
        })
    }

    /// Submit, as the trait impl answers it; the trait impl counts its result.
    async fn submit_rpc(
        &self,
        req: Request<proto::SubmitRequest>,
    ) -> Result<Response<proto::SubmitResponse>, Status> {
        let peer = req.extensions().get::<Peer>();
        if self.submit_needs_client_cert && peer.and_then(|p| p.client_cert).is_none() {
            return Err(ApiError::from(RequestError::ClientCertificateRequired).into());
        }
        if let Some(limit) = &self.rates.submit_per_ip {
            limit
                .check(&ratelimit::client_key(client_ip(&req)))
                .map_err(|l| self.limited(Rpc::Submit, l))?;
        }
        #[cfg(feature = "fault-injection")]
        if let Some(reply) = faults::submit_unchecked(self, &req).await {
            return Ok(Response::new(reply?));
        }
        Ok(Response::new(
            LogService::submit(self, req.into_inner()).await?,
        ))
    }
}

impl From<&Published> for proto::SignedCheckpoint {
    fn from(p: &Published) -> Self {
        proto::SignedCheckpoint {
            note: p.note.clone(),
            size: p.checkpoint.size,
            root_hash: p.checkpoint.root.0.to_vec(),
        }
    }
}

impl From<Inclusion> for proto::InclusionProof {
    fn from(p: Inclusion) -> Self {
        proto::InclusionProof {
            index: p.index,
            tree_size: p.tree_size,
            hashes: p.hashes.iter().map(|h| h.0.to_vec()).collect(),
            leaf_hash: p.leaf_hash.0.to_vec(),
        }
    }
}

/// The largest envelope admitted on an async worker, up to its references. Admission's cost
/// grows with the envelope (hashing, base64, JSON, the declaration's lists): a Submit of an
/// 8,000-byte envelope cost the server ~57 µs more than one of 1,200 bytes, all stages
/// together, so admission at this size stays near 150 µs, about tokio's guidance for the time
/// between two awaits. A model-release declaration is ~1.2 KB.
const WORKER_ADMISSION_BYTES: usize = 8 << 10;

/// The permits of [`LogService::admission_permits`]: one per core
/// ([`std::thread::available_parallelism`], 1 if unknown). The costly part of admission (large
/// envelopes, referenced entries read and parsed) runs on tokio's blocking pool, never on the
/// async workers that answer reads; and at most one such admission per core runs at once, so
/// Submits queue for a permit instead of filling the blocking pool (512 threads).
pub(super) fn admission_permits() -> Arc<Semaphore> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    Arc::new(Semaphore::new(cores))
}

/// The log's clock now, in milliseconds since the epoch, as the sequencer reads it: admission
/// uses it for the length of the leaf the entry would be (the sequencer gives the exact time).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The server's [`Lookup`]: the entries in its store, all admitted, so reading the statement
/// tells what an entry is.
struct LoggedEntries<'a>(&'a Store);

/// The lookup of a declaration whose references name no log index: never called
/// ([`admission::Admitted::reads_logged_entries`]).
struct NoReads;

impl Lookup for NoReads {
    type Error = ApiError;

    fn target(&self, index: u64) -> Result<Target, ApiError> {
        Err(ApiError::Internal(format!(
            "admission on the worker was asked for the logged entry {index}"
        )))
    }
}

impl Lookup for LoggedEntries<'_> {
    type Error = StorageError;

    fn target(&self, index: u64) -> Result<Target, StorageError> {
        let leaf = self.0.logged_entry(index)?;
        // Every entry in the store passed the admission of its day. One whose statement today's
        // rules refuse (a version with a control character, logged before those were refused)
        // is no declaration to refer to, as `audit` and `monitor` read it: a broken reference.
        let declaration = admission::logged_declaration(&leaf).unwrap_or_else(|e| {
            tracing::warn!(index, error = %e, "a referenced entry no longer parses");
            None
        });
        Ok(
            declaration.map_or(Target::NotDeclaration, |d| Target::Declaration {
                kind: d.kind(),
                name: d.name().as_str().to_string(),
                digest: *d.subject_digest(),
            }),
        )
    }
}

impl LogService {
    /// Admits the envelope ([`admission::admit`], references against the latest checkpoint)
    /// and logs it.
    async fn submit(&self, req: proto::SubmitRequest) -> Result<proto::SubmitResponse, ApiError> {
        let limit = self.limits.max_envelope_bytes;
        if req.envelope.len() > limit {
            return Err(RequestError::EnvelopeTooLarge {
                size: req.envelope.len(),
                limit,
            }
            .into());
        }
        let policy = Policy {
            extra_predicate_types: self.limits.extra_predicate_types.clone(),
            check_signatures: true,
        };
        // From here the sequencer may wait for this submission (up to its batch window) rather
        // than commit a batch without it; a refusal below drops the announcement.
        let announced = self.sequencer.announce();
        let size = self.sequencer.latest().checkpoint.size;
        let pending = self.admit(req, policy, size).await?;
        self.log_and_prove(pending, announced).await
    }

    /// [`admission::admit`] of `req` against a log of `size` entries, and the entry to log.
    ///
    /// Where each half runs: an envelope of at most [`WORKER_ADMISSION_BYTES`] is admitted up
    /// to its references ([`admission::admit_unreferenced`]: signatures, JSON, declaration
    /// rules; no I/O, ~60–150 µs) on the async worker that received it, since the hand-off to
    /// the blocking pool and back cost more than that (docs/performance.md, "Admission on the
    /// worker"). A larger envelope, and the check of references that read logged entries (up
    /// to 1,024 entries of up to 64 KiB each), run on the blocking pool under an
    /// [`LogService::admission_permits`] permit, so that reads keep being served.
    async fn admit(
        &self,
        req: proto::SubmitRequest,
        policy: Policy,
        size: u64,
    ) -> Result<PendingEntry, ApiError> {
        let logged_at_ms = now_ms();
        let proto::SubmitRequest {
            envelope,
            public_keys,
        } = req;
        let (admitted, envelope) = if envelope.len() <= WORKER_ADMISSION_BYTES {
            let admitted = admission::admit_unreferenced(
                &envelope,
                &public_keys,
                &self.keys,
                &policy,
                logged_at_ms,
            )?;
            let admitted = if admitted.reads_logged_entries() {
                self.off_workers(move |store| {
                    admission::check_references(&admitted, size, &LoggedEntries(store))??;
                    Ok(admitted)
                })
                .await?
            } else {
                admission::check_references(&admitted, size, &NoReads)?.map_err(ApiError::from)?;
                admitted
            };
            (admitted, envelope)
        } else {
            let keys = self.keys.clone();
            self.off_workers(move |store| {
                let admitted = admission::admit(
                    &envelope,
                    &public_keys,
                    &keys,
                    &policy,
                    size,
                    logged_at_ms,
                    &LoggedEntries(store),
                )??;
                Ok((admitted, envelope))
            })
            .await?
        };
        // Only keys whose signature verified are charged.
        if let Some(limit) = &self.rates.submit_per_key {
            for key in &admitted.key_ids {
                limit.check(&key.0).inspect_err(|_| {
                    self.metrics.rate_limited(Rpc::Submit.name());
                })?;
            }
        }
        let prefixes = search::index_prefixes(admitted.declaration.as_ref(), &admitted.key_ids);
        Ok(admitted.into_pending(envelope, prefixes))
    }

    /// Runs `work` on the blocking pool, under an [`LogService::admission_permits`] permit.
    async fn off_workers<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = self
            .admission_permits
            .clone()
            .acquire_owned()
            .await
            .expect("the admission semaphore is never closed");
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&store)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("admission task: {e}")))?
    }

    /// Hands an admitted entry to the sequencer and answers with its index, leaf data, signed
    /// checkpoint and inclusion proof, once it is durable and in that checkpoint.
    pub(super) async fn log_and_prove(
        &self,
        pending: PendingEntry,
        announced: Announced,
    ) -> Result<proto::SubmitResponse, ApiError> {
        let appended = self.sequencer.append_announced(pending, announced).await?;
        let published = &appended.batch.published;
        let leaf_data = match appended.leaf_data() {
            Some(d) => d.to_vec(),
            None => self.store.logged_entry(appended.index)?,
        };
        let proof = self
            .prover
            .inclusion_by_index(appended.index, published.checkpoint.size)?;
        Ok(proto::SubmitResponse {
            index: appended.index,
            duplicate: appended.duplicate,
            proof: Some(proof.into()),
            checkpoint: Some(published.as_ref().into()),
            leaf_data,
        })
    }

    fn search(&self, req: proto::SearchRequest) -> Result<proto::SearchResponse, ApiError> {
        let query = search::Query::from_proto(req.query)?;
        let from = search::parse_page_token(&req.page_token)?;
        let page_size = search::page_size(req.page_size)?;
        let published = self.sequencer.latest();
        let page = self.store.search_page(
            &[query.prefix()],
            from,
            published.checkpoint.size,
            page_size,
            MAX_REPLY_BYTES,
        )?;
        let entries = page
            .entries
            .into_iter()
            .map(|(index, leaf_data)| proto::Entry { index, leaf_data })
            .collect();
        let next_page_token = page.next.map(search::page_token).unwrap_or_default();
        Ok(proto::SearchResponse {
            entries,
            next_page_token,
            checkpoint: Some(published.as_ref().into()),
        })
    }

    /// The latest checkpoint, or the latest witnessed one when asked.
    fn get_checkpoint(
        &self,
        req: proto::GetCheckpointRequest,
    ) -> Result<proto::SignedCheckpoint, ApiError> {
        if req.witnessed {
            let witnessing = self
                .witnessing
                .as_ref()
                .ok_or(RequestError::NoWitnessPolicy);
            let latest = witnessing
                .map(WitnessingHandle::latest)
                .and_then(|w| w.ok_or(RequestError::NotWitnessedYet))?;
            return Ok(latest.as_ref().into());
        }
        let checkpoint: proto::SignedCheckpoint = self.sequencer.latest().as_ref().into();
        #[cfg(feature = "fault-injection")]
        let checkpoint = faults::served_checkpoint(checkpoint, &self.store);
        Ok(checkpoint)
    }

    fn get_entries(
        &self,
        req: proto::GetEntriesRequest,
    ) -> Result<proto::GetEntriesResponse, ApiError> {
        let size = self.sequencer.latest().checkpoint.size;
        let range = request::entries_range(req.start, req.end, size)?;
        let entries: Vec<proto::Entry> = self
            .store
            .entries(range.start, range.end, MAX_REPLY_BYTES)?
            .into_iter()
            .map(|(index, leaf_data)| proto::Entry { index, leaf_data })
            .collect();
        #[cfg(feature = "fault-injection")]
        let entries = entries
            .into_iter()
            .map(|e: proto::Entry| proto::Entry {
                leaf_data: faults::served_leaf(e.index, e.leaf_data, None),
                ..e
            })
            .collect();
        Ok(proto::GetEntriesResponse { entries })
    }

    fn get_inclusion_proof(
        &self,
        req: proto::GetInclusionProofRequest,
    ) -> Result<proto::InclusionProof, ApiError> {
        let latest = self.sequencer.latest().checkpoint.size;
        let tree_size = Prover::resolve_size(req.tree_size, latest)?;
        let proof = match req.leaf {
            Some(Leaf::Index(i)) => self.prover.inclusion_by_index(i, tree_size)?,
            Some(Leaf::LeafHash(h)) => self.prover.inclusion_by_hash(&h, tree_size)?,
            None => return Err(RequestError::NoLeaf.into()),
        };
        Ok(proof.into())
    }

    fn get_consistency_proof(
        &self,
        req: proto::GetConsistencyProofRequest,
    ) -> Result<proto::ConsistencyProof, ApiError> {
        let latest = self.sequencer.latest().checkpoint.size;
        let to_size = Prover::resolve_size(req.to_size, latest)?;
        let hashes = self.prover.consistency(req.from_size, to_size)?;
        Ok(proto::ConsistencyProof {
            from_size: req.from_size,
            to_size,
            hashes: hashes.iter().map(|h| h.0.to_vec()).collect(),
        })
    }
}

#[tonic::async_trait]
impl TransparencyLog for LogService {
    async fn get_log_info(
        &self,
        req: Request<proto::GetLogInfoRequest>,
    ) -> Result<Response<proto::LogInfo>, Status> {
        self.read_rpc(Rpc::GetLogInfo, req, LogService::log_info)
    }

    /// The one place a Submit's result is known: every answer is counted by its code.
    async fn submit(
        &self,
        req: Request<proto::SubmitRequest>,
    ) -> Result<Response<proto::SubmitResponse>, Status> {
        let result = self.timed(Rpc::Submit, self.submit_rpc(req)).await;
        self.metrics.submission(match &result {
            Ok(_) => tonic::Code::Ok as i32,
            Err(status) => status.code() as i32,
        });
        result
    }

    async fn get_checkpoint(
        &self,
        req: Request<proto::GetCheckpointRequest>,
    ) -> Result<Response<proto::SignedCheckpoint>, Status> {
        self.read_rpc(Rpc::GetCheckpoint, req, LogService::get_checkpoint)
    }

    async fn get_entries(
        &self,
        req: Request<proto::GetEntriesRequest>,
    ) -> Result<Response<proto::GetEntriesResponse>, Status> {
        self.read_rpc(Rpc::GetEntries, req, LogService::get_entries)
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<proto::GetInclusionProofRequest>,
    ) -> Result<Response<proto::InclusionProof>, Status> {
        self.read_rpc(Rpc::GetInclusionProof, req, LogService::get_inclusion_proof)
    }

    async fn get_consistency_proof(
        &self,
        req: Request<proto::GetConsistencyProofRequest>,
    ) -> Result<Response<proto::ConsistencyProof>, Status> {
        self.read_rpc(
            Rpc::GetConsistencyProof,
            req,
            LogService::get_consistency_proof,
        )
    }

    async fn search(
        &self,
        req: Request<proto::SearchRequest>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        self.read_rpc(Rpc::Search, req, LogService::search)
    }

    type TailStream = tail::TailStream;

    async fn tail(
        &self,
        req: Request<proto::TailRequest>,
    ) -> Result<Response<Self::TailStream>, Status> {
        self.admit_read(Rpc::Tail, &req)?;
        let ip = client_ip(&req);
        let per_ip = self.limits.max_tail_streams_per_ip;
        let address = self
            .tail_per_address
            .take(ip, per_ip)
            .ok_or(RequestError::TooManyTailStreamsFromAddress(per_ip))
            .map_err(ApiError::from)?;
        let server = self.tail_permits.clone().try_acquire_owned().map_err(|_| {
            ApiError::from(RequestError::TooManyTailStreams(
                self.limits.max_tail_streams,
            ))
        })?;
        let stream = tail::start(
            req.into_inner().start,
            self.store.clone(),
            self.sequencer.clone(),
            self.shutdown.clone(),
            self.witnessing.as_ref().map(WitnessingHandle::watch),
            tail::Slots::new(server, address, self.metrics.tail_stream()),
            self.limits.tail_stall_timeout,
        );
        Ok(Response::new(stream))
    }
}
