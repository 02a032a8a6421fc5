//! One accepted connection, plaintext or TLS, holding its places under the connection caps
//! until it is dropped.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// Who is at the other end of a connection. Put into every gRPC request's extensions (tonic's
/// `Connected`), and known to the HTTP listener per connection.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The SHA-256 of the client's certificate, when it presented one that chains to the
    /// configured client CA (`tls_client_ca`); rustls refused the handshake otherwise.
    pub client_cert: Option<[u8; 32]>,
}

/// The places a connection holds under the caps: one of `max_connections`, one of its
/// address's `max_connections_per_ip`.
pub(crate) struct Guard {
    pub(crate) _permit: OwnedSemaphorePermit,
    pub(crate) _slot: super::Slot,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// An accepted connection.
pub struct Conn {
    io: Io,
    peer: Peer,
    _guard: Guard,
}

impl Conn {
    pub(crate) fn plain(tcp: TcpStream, addr: SocketAddr, guard: Guard) -> Conn {
        Conn {
            io: Io::Plain(tcp),
            peer: Peer {
                addr,
                client_cert: None,
            },
            _guard: guard,
        }
    }

    pub(crate) fn tls(
        stream: tokio_rustls::server::TlsStream<TcpStream>,
        addr: SocketAddr,
        client_cert: Option<[u8; 32]>,
        guard: Guard,
    ) -> Conn {
        Conn {
            io: Io::Tls(Box::new(stream)),
            peer: Peer { addr, client_cert },
            _guard: guard,
        }
    }

    pub fn peer(&self) -> &Peer {
        &self.peer
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = Peer;

    fn connect_info(&self) -> Peer {
        self.peer.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
