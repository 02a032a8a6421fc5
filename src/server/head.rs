//! The log's public head: the checkpoint its static faces (the tiles listener and the
//! publisher) show the world.
//!
//! Without a witness policy it is the sequencer's latest checkpoint. With one it is the latest
//! checkpoint that met the policy, with its cosignatures, so that a tile client that demands the
//! quorum never sees a head it must refuse; before the first such checkpoint there is none.
//! Either way it is a checkpoint the log signed and stored, and everything below its size is
//! durable.

use std::sync::Arc;

use tokio::sync::watch;

use crate::server::sequencer::{Published, Sequencer};
use crate::server::witnessing::WitnessingHandle;

/// Follows the public head. Cloning is cheap.
#[derive(Clone)]
pub enum Head {
    Sequenced(watch::Receiver<Arc<Published>>),
    Witnessed(watch::Receiver<Option<Arc<Published>>>),
}

impl Head {
    /// The head of a log served by `sequencer`, witnessed through `witnessing` if it has a policy.
    pub fn new(sequencer: &Sequencer, witnessing: Option<&WitnessingHandle>) -> Head {
        match witnessing {
            Some(w) => Head::Witnessed(w.watch()),
            None => Head::Sequenced(sequencer.watch()),
        }
    }

    /// The current head, if there is one yet.
    pub fn latest(&self) -> Option<Arc<Published>> {
        match self {
            Head::Sequenced(rx) => Some(rx.borrow().clone()),
            Head::Witnessed(rx) => rx.borrow().clone(),
        }
    }

    /// Waits until the head changes; `false` once it never will again (the log stopped).
    pub async fn changed(&mut self) -> bool {
        match self {
            Head::Sequenced(rx) => rx.changed().await.is_ok(),
            Head::Witnessed(rx) => rx.changed().await.is_ok(),
        }
    }
}
