//! The Tail stream: every entry from a start index, in order, then new entries as they are
//! integrated, each run followed by the checkpoint whose size is exactly the stream's position.
//!
//! One task per stream. It subscribes to the sequencer's batch broadcast *before* reading the
//! latest checkpoint, so no batch can slip between the two. While it is behind the latest
//! checkpoint it reads from storage, in runs that end at a stored checkpoint (at least
//! [`CATCH_UP_RUN`] entries apart, so a monitor verifies few signatures while catching up).
//! Once caught up it forwards broadcast batches. A consumer that reads slowly only fills its own
//! bounded channel; the broadcast then overruns this stream's receiver (never the writer), and
//! the task goes back to reading storage.
//!
//! Memory per stream is bounded in bytes: an event waits for room in the stream's
//! [`BUFFER_BYTES`] before it is queued, and gives its room back when tonic takes it. A consumer
//! that takes nothing for `tail_stall_timeout` while the buffer is full is ended
//! ([`TailError::Stalled`], after what was buffered), so that its slot under the stream caps
//! goes to someone who reads.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use prost::Message;
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_stream::Stream;
use tonic::Status;

use super::config::MAX_REPLY_BYTES;
use crate::proto::{self, tail_event::Event, TailEvent};
use crate::server::sequencer::{CommittedBatch, Published, Sequencer};
use crate::server::storage::{StorageError, Store, StoredCheckpoint};
use crate::server::witnessing::Witnessed;

/// The stream type of the Tail rpc.
pub type TailStream = Pin<Box<dyn Stream<Item = Result<TailEvent, Status>> + Send>>;

/// While catching up from storage, runs end at the first stored checkpoint at least this many
/// entries ahead (or at the latest checkpoint).
pub const CATCH_UP_RUN: u64 = 4096;

/// Why a Tail stream ended with an error (its status is chosen in `status.rs`, reached through
/// `Status: From<TailError>`, so this module imports no mapping).
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The server is stopping; the client resumes from its position on another connection.
    #[error("the server is shutting down; reconnect to resume")]
    ShuttingDown,
    /// Reading entries or checkpoints failed, or what is stored contradicts itself.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The blocking task that reads storage panicked or was cancelled.
    #[error("tail read task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The consumer took nothing for this long with the stream's buffer full.
    #[error("this Tail stream was not read for {0:?}; reconnect from your position and read as entries arrive")]
    Stalled(Duration),
}

/// Bytes of encoded events buffered per stream before the task waits for the consumer (an
/// event larger than this, up to one 64 KiB leaf, takes the whole buffer).
pub const BUFFER_BYTES: usize = 1 << 20;

/// The places a stream holds while it runs: one under the server's cap, one under its client
/// address's, and its unit of the open Tail streams gauge; given back when its task ends.
pub struct Slots {
    _server: OwnedSemaphorePermit,
    _address: crate::server::transport::Slot,
    _open: crate::server::metrics::Held,
}

impl Slots {
    pub fn new(
        server: OwnedSemaphorePermit,
        address: crate::server::transport::Slot,
        open: crate::server::metrics::Held,
    ) -> Slots {
        Slots {
            _server: server,
            _address: address,
            _open: open,
        }
    }
}

/// An event queued for the consumer with the buffer room it holds.
type Queued = (Result<TailEvent, Status>, OwnedSemaphorePermit);

/// Starts the task feeding one Tail stream from index `start`. The stream holds `slots` until
/// its task ends.
pub fn start(
    start: u64,
    store: Arc<Store>,
    sequencer: Sequencer,
    shutdown: watch::Receiver<bool>,
    witnessed: Option<watch::Receiver<Option<Arc<Witnessed>>>>,
    slots: Slots,
    stall_timeout: Duration,
) -> TailStream {
    // The channel's count bound is never reached before the byte bound (events are ≥ 2 bytes).
    let (tx, rx) = mpsc::unbounded_channel();
    let last_words = Arc::new(Mutex::new(None));
    let stream = Consumer {
        rx,
        last_words: last_words.clone(),
    };
    tokio::spawn(async move {
        let _slots = slots;
        let mut tail = Tail {
            pos: start,
            #[cfg(feature = "fault-injection")]
            first: start,
            store,
            sequencer,
            tx,
            room: Arc::new(Semaphore::new(BUFFER_BYTES)),
            stall_timeout,
            witnessed,
            witnessed_sent: None,
        };
        let result = tokio::select! {
            r = tail.run() => r,
            _ = wait_for_shutdown(shutdown) => Err(Ended::Failed(TailError::ShuttingDown)),
        };
        if let Err(Ended::Failed(e)) = result {
            // Delivered after what is buffered, whatever room is left.
            *last_words.lock().unwrap_or_else(|p| p.into_inner()) = Some(Status::from(e));
        }
    });
    Box::pin(stream)
}

/// The consumer's side: buffered events in order, giving back their room as tonic takes them,
/// then the stream's error, if it ended with one.
struct Consumer {
    rx: mpsc::UnboundedReceiver<Queued>,
    last_words: Arc<Mutex<Option<Status>>>,
}

impl Stream for Consumer {
    type Item = Result<TailEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some((event, _room))) => Poll::Ready(Some(event)),
            Poll::Ready(None) => Poll::Ready(
                self.last_words
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .map(Err),
            ),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Completes when the witnessed checkpoint changes; never, on a log without a witness policy
/// (or once the witnessing task is gone).
async fn witnessed_changed(w: &mut Option<watch::Receiver<Option<Arc<Witnessed>>>>) {
    if let Some(rx) = w {
        if rx.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

async fn wait_for_shutdown(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// How a stream's task ends early: the consumer went away (nothing to send), or an error that
/// is sent as the stream's last item.
enum Ended {
    ConsumerGone,
    Failed(TailError),
}

impl From<StorageError> for Ended {
    fn from(e: StorageError) -> Self {
        Ended::Failed(e.into())
    }
}

impl From<tokio::task::JoinError> for Ended {
    fn from(e: tokio::task::JoinError) -> Self {
        Ended::Failed(e.into())
    }
}

struct Tail {
    /// The next index to send; every checkpoint sent has exactly this size.
    pos: u64,
    /// The stream's start (fault injection serves some streams differently).
    #[cfg(feature = "fault-injection")]
    first: u64,
    store: Arc<Store>,
    sequencer: Sequencer,
    tx: mpsc::UnboundedSender<Queued>,
    /// Free bytes of this stream's buffer.
    room: Arc<Semaphore>,
    stall_timeout: Duration,
    /// The witnessed checkpoints, on a log with a witness policy.
    witnessed: Option<watch::Receiver<Option<Arc<Witnessed>>>>,
    /// The size of the last witnessed checkpoint sent on this stream.
    witnessed_sent: Option<u64>,
}

impl Tail {
    async fn run(&mut self) -> Result<(), Ended> {
        let mut batches = self.sequencer.subscribe();
        loop {
            let latest = self.sequencer.latest();
            if self.pos < latest.checkpoint.size {
                self.catch_up(latest.checkpoint.size).await?;
                continue;
            }
            let received = tokio::select! {
                r = batches.recv() => r,
                // Nothing to send until the next batch: notice a consumer that went away now,
                // so its slot under the stream cap is freed.
                () = self.tx.closed() => return Err(Ended::ConsumerGone),
                () = witnessed_changed(&mut self.witnessed) => {
                    self.send_witnessed_if_due().await?;
                    continue;
                }
            };
            match received {
                Ok(batch) => self.forward(&batch).await?,
                // Overrun: what was missed is on disk; the next loop reads it from storage.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(Ended::Failed(TailError::ShuttingDown))
                }
            }
        }
    }

    /// Sends one storage run: entries from `pos` to a stored checkpoint, then that checkpoint.
    async fn catch_up(&mut self, latest_size: u64) -> Result<(), Ended> {
        let target = self.pos.saturating_add(CATCH_UP_RUN).min(latest_size);
        let checkpoint = self
            .store
            .checkpoint_at_or_after(target)?
            .filter(|c| c.size <= latest_size)
            .ok_or_else(|| {
                StorageError::Corrupt(format!("no stored checkpoint at or after {target}"))
            })?;
        while self.pos < checkpoint.size {
            let entries = {
                let store = self.store.clone();
                let (from, to) = (self.pos, checkpoint.size);
                tokio::task::spawn_blocking(move || store.entries(from, to, MAX_REPLY_BYTES))
                    .await??
            };
            for (index, leaf_data) in entries {
                self.send(Event::Entry(proto::Entry { index, leaf_data }))
                    .await?;
                self.pos = index + 1;
            }
        }
        self.send_checkpoint(&checkpoint).await
    }

    /// Sends the part of a live batch at or after `pos`, then its checkpoint.
    async fn forward(&mut self, batch: &CommittedBatch) -> Result<(), Ended> {
        let end = batch.published.checkpoint.size;
        if end <= self.pos || batch.start > self.pos {
            // Already sent, or a gap that the storage path fills on the next loop.
            return Ok(());
        }
        let skip = usize::try_from(self.pos - batch.start).unwrap_or(usize::MAX);
        for (offset, leaf) in batch.leaves.iter().enumerate().skip(skip) {
            let index = batch.start + offset as u64;
            self.send(Event::Entry(proto::Entry {
                index,
                leaf_data: leaf.clone(),
            }))
            .await?;
            self.pos = index + 1;
        }
        self.send_published(&batch.published).await
    }

    async fn send_checkpoint(&mut self, c: &StoredCheckpoint) -> Result<(), Ended> {
        let published = self.sequencer.latest();
        let event = if published.checkpoint.size == c.size {
            proto::SignedCheckpoint::from(published.as_ref())
        } else {
            stored_to_proto(c)?
        };
        self.send(Event::Checkpoint(event)).await?;
        self.send_witnessed_if_due().await
    }

    async fn send_published(&mut self, p: &Published) -> Result<(), Ended> {
        self.send(Event::Checkpoint(p.into())).await?;
        self.send_witnessed_if_due().await
    }

    /// Sends the latest witnessed checkpoint if it is newer than the last one sent and covers no
    /// entry this stream has not sent.
    async fn send_witnessed_if_due(&mut self) -> Result<(), Ended> {
        let Some(latest) = self.witnessed.as_ref().and_then(|w| w.borrow().clone()) else {
            return Ok(());
        };
        let size = latest.checkpoint.size;
        if size > self.pos || self.witnessed_sent.is_some_and(|sent| sent >= size) {
            return Ok(());
        }
        self.send(Event::Witnessed(latest.as_ref().into())).await?;
        self.witnessed_sent = Some(size);
        Ok(())
    }

    /// Queues `event` once the buffer has room for it; ends the stream if the consumer made
    /// none for `stall_timeout`.
    async fn send(&self, event: Event) -> Result<(), Ended> {
        #[cfg(feature = "fault-injection")]
        let event = super::faults::tail_event(event, self.first, &self.store);
        let event = TailEvent { event: Some(event) };
        let bytes = event.encoded_len().clamp(1, BUFFER_BYTES);
        let room = tokio::select! {
            r = tokio::time::timeout(
                self.stall_timeout,
                self.room.clone().acquire_many_owned(bytes as u32),
            ) => match r {
                Ok(permit) => permit.expect("the buffer's semaphore is never closed"),
                Err(_) => return Err(Ended::Failed(TailError::Stalled(self.stall_timeout))),
            },
            () = self.tx.closed() => return Err(Ended::ConsumerGone),
        };
        self.tx
            .send((Ok(event), room))
            .map_err(|_| Ended::ConsumerGone)
    }
}

/// A stored checkpoint as sent on the wire, with size and root read from its own note body.
fn stored_to_proto(c: &StoredCheckpoint) -> Result<proto::SignedCheckpoint, StorageError> {
    let checkpoint = c.checkpoint()?;
    Ok(proto::SignedCheckpoint {
        note: c.note.clone(),
        size: c.size,
        root_hash: checkpoint.root.0.to_vec(),
    })
}
