//! TLS for the listeners (rustls, with the aws-lc-rs provider): a certificate chain and key from
//! PEM files, optionally a CA whose client certificates authenticate publishers, reloaded from
//! the same files on SIGHUP without dropping a connection.
//!
//! A reload that fails (a missing file, a key that does not match) keeps the previous
//! certificates and logs why: a renewal gone wrong must not take the log off the network.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::server::config::TlsConfig;

/// Errors loading certificates.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("tls_cert {cert} and tls_key {key}: {reason}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// A listener's TLS: the current rustls configuration, replaced as a whole on reload.
pub struct Tls {
    files: TlsConfig,
    alpn: Vec<Vec<u8>>,
    current: RwLock<tokio_rustls::TlsAcceptor>,
}

impl Tls {
    /// Loads the files of `files`, offering the ALPN protocols `alpn` (`h2` for gRPC).
    ///
    /// # Errors
    /// A file cannot be read or parsed, or the key does not match the certificate.
    pub fn load(files: &TlsConfig, alpn: &[&[u8]]) -> Result<Tls, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = acceptor(files, &alpn)?;
        Ok(Tls {
            files: files.clone(),
            alpn,
            current: RwLock::new(acceptor),
        })
    }

    /// Reads the files again and, if they make a valid configuration, serves new handshakes
    /// with it.
    ///
    /// # Errors
    /// As [`Tls::load`]; the previous configuration stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let acceptor = acceptor(&self.files, &self.alpn)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = acceptor;
        Ok(())
    }

    /// Runs the server side of a handshake; returns the stream and the SHA-256 of the client's
    /// certificate if it presented one (which rustls has verified against the client CA).
    pub(crate) async fn accept(
        &self,
        tcp: TcpStream,
    ) -> io::Result<(tokio_rustls::server::TlsStream<TcpStream>, Option<[u8; 32]>)> {
        let acceptor = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let stream = acceptor.accept(tcp).await?;
        let client = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| Sha256::digest(leaf.as_ref()).into());
        Ok((stream, client))
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::File {
            path: path.to_path_buf(),
            reason: format!("not PEM certificates: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            path: path.to_path_buf(),
            reason: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn acceptor(files: &TlsConfig, alpn: &[Vec<u8>]) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let chain = certificates(&files.cert)?;
    let key =
        PrivateKeyDer::from_pem_slice(&read_file(&files.key)?).map_err(|e| TlsError::File {
            path: files.key.clone(),
            reason: format!("not a PEM private key: {e}"),
        })?;
    let invalid = |reason: String| TlsError::Config {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
            }
            // Optional at the handshake: reads stay open to everyone, Submit asks for it.
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| invalid(e.to_string()))?;
    config.alpn_protocols = alpn.to_vec();
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Reloads every listener's certificates on each SIGHUP until `stop` turns true.
pub fn reload_on_sighup(listeners: Vec<Arc<Tls>>, mut stop: watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP: certificates are not reloaded");
            return;
        }
    };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => {}
                _ = stop.wait_for(|&s| s) => return,
            }
            for tls in &listeners {
                match tls.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %tls.files.cert.display(), "TLS certificates reloaded")
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed; the previous certificates stay")
                    }
                }
            }
        }
    });
}
