//! The server's connections, before any protocol: accepting, capping, TLS, and the gRPC
//! request-body bound. Both listeners (gRPC and HTTP) take their connections from here, so one
//! set of limits holds for every byte that reaches the process from the network.
//!
//! - [`accept`]: the accept loop. At most `max_connections` connections at once (beyond, the
//!   loop stops accepting and the kernel's backlog queues), at most `max_connections_per_ip`
//!   from one address (beyond, a new connection is closed at once), accept errors (`EMFILE`
//!   and the like) retried with backoff instead of a busy loop, and the TLS handshake, when
//!   configured, run beside the loop under a deadline so that a slow client holds nothing but
//!   its own slot.
//! - [`conn`]: one accepted connection ([`Conn`]) and who is at the other end ([`Peer`]).
//! - [`tls`]: certificates from PEM files, reloaded on SIGHUP.
//! - [`body`]: the gRPC request body is read completely, within the decode limit and the
//!   request timeout, before tonic sees it: a message announced as large reserves nothing
//!   until its bytes have arrived.
//!
//! HTTP/2 limits (concurrent streams, keepalive, connection age) are set where each protocol's
//! server is built (`server::serve` and `http::serve`), from the same [`TransportConfig`].
//!
//! This module knows nothing of the log.

pub mod body;
mod conn;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

pub use conn::{Conn, Peer};

use crate::server::config::TransportConfig;

/// How long a TLS handshake may take before the connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first and the longest pause after a failed `accept`.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Connections accepted on one listener, ready for a protocol (TLS done when configured).
pub struct Incoming {
    rx: mpsc::Receiver<Conn>,
    local: SocketAddr,
}

impl Incoming {
    /// The next connection; `None` once the listener stopped.
    pub async fn next(&mut self) -> Option<Conn> {
        self.rx.recv().await
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connections as a stream, for tonic's `serve_with_incoming`.
    pub fn into_stream(self) -> impl futures::Stream<Item = std::io::Result<Conn>> {
        futures::stream::unfold(self, |mut incoming| async move {
            incoming.next().await.map(|c| (Ok(c), incoming))
        })
    }
}

/// Counts what each client address holds (connections, Tail streams); a [`Slot`] is one.
#[derive(Default)]
pub struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One place in a [`PerAddress`] table; given back on drop.
pub struct Slot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    /// A place for `ip` if it holds fewer than `cap`.
    pub fn take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Starts accepting on `listener` under `config`'s connection limits, with TLS when `tls` is
/// given, until `stop` turns true.
///
/// # Errors
/// The listener's local address cannot be read.
pub fn accept(
    listener: TcpListener,
    config: &TransportConfig,
    tls: Option<Arc<tls::Tls>>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<Incoming> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(64);
    let total = Arc::new(Semaphore::new(config.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let per_ip_cap = config.max_connections_per_ip;
    tokio::spawn(async move {
        let mut pause = ACCEPT_BACKOFF.0;
        loop {
            let permit = tokio::select! {
                p = total.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = stop.wait_for(|&s| s) => return,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|&s| s) => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => {
                    pause = ACCEPT_BACKOFF.0;
                    a
                }
                Err(e) => {
                    // Out of file descriptors or memory: retrying at once would spin; the
                    // connections queued in the backlog wait for the pause.
                    tracing::warn!(error = %e, ?pause, %local, "accept failed; pausing");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(ACCEPT_BACKOFF.1);
                    continue;
                }
            };
            let Some(slot) = per_address.take(peer.ip(), per_ip_cap) else {
                tracing::debug!(%peer, cap = per_ip_cap, "too many connections from one address; closed");
                continue;
            };
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, %peer, "set_nodelay");
            }
            let guard = conn::Guard {
                _permit: permit,
                _slot: slot,
            };
            match &tls {
                None => {
                    if tx.send(Conn::plain(tcp, peer, guard)).await.is_err() {
                        return;
                    }
                }
                Some(tls) => {
                    let (tls, tx) = (tls.clone(), tx.clone());
                    tokio::spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
                            Ok(Ok((stream, client))) => {
                                let _ = tx.send(Conn::tls(stream, peer, client, guard)).await;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, %peer, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    Ok(Incoming { rx, local })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_slots_are_counted_and_given_back() {
        let table = Arc::new(PerAddress::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let a = table.take(ip, 2).unwrap();
        let b = table.take(ip, 2).unwrap();
        assert!(table.take(ip, 2).is_none());
        let c = table.take(other, 2).unwrap();
        drop(a);
        let d = table.take(ip, 2).unwrap();
        drop((b, c, d));
        assert!(table.open.lock().unwrap().is_empty());
    }
}
