//! HTTPS for `serve --tls-cert FILE --tls-key FILE`: the certificate chain and its key read once at start
//! into a rustls configuration (TLS 1.2 and 1.3 only), and [`TlsListener`], which hands axum connections whose
//! handshake has completed. Handshakes run on tasks of their own with a deadline, so a client that connects
//! and says nothing holds up no one else. Errors name the file and never print key material.

use crate::error::Error;
use axum::serve::Listener;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for axum to take them.
const BACKLOG: usize = 64;

/// Marks a request that came over this server's own TLS (an extension set on every request of an HTTPS
/// server), so that the web UI's session cookie is `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls;

/// How long a browser that reached this server over HTTPS keeps to HTTPS for its host: a year, the usual
/// value (browsers ignore it for IP addresses and for certificates they do not trust).
const HSTS: &str = "max-age=31536000";

/// Adds `Strict-Transport-Security` to every answer of an HTTPS server, so that a browser never sends the
/// session cookie's requests over plain HTTP to that host again.
pub async fn strict_transport_security(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .insert(axum::http::header::STRICT_TRANSPORT_SECURITY, axum::http::HeaderValue::from_static(HSTS));
    response
}

/// The server configuration for the PEM certificate chain at `cert` (the server's certificate first) and
/// the PEM private key at `key` (PKCS#8, PKCS#1 or SEC1). Fails when either cannot be read or parsed, or
/// when the key is not the certificate's.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error("--tls-cert", cert, e))?;
    if chain.is_empty() {
        return Err(Error::input(format!(
            "--tls-cert {} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)",
            cert.display()
        )));
    }
    let private = match PrivateKeyDer::from_pem_file(key) {
        Ok(private) => private,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(Error::input(format!(
                "--tls-key {} holds no private key (expected a PEM \"BEGIN PRIVATE KEY\" block)",
                key.display()
            )))
        }
        Err(e) => return Err(pem_error("--tls-key", key, e)),
    };
    warn_if_shared(key);
    let config = rustls::ServerConfig::builder_with_provider(cfgledger_client::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::input(format!("cannot set up TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            // rustls's message names the problem (a key that does not match, an unsupported algorithm), never
            // the key's bytes.
            Error::input(format!("--tls-cert {} and --tls-key {} cannot serve TLS: {e}", cert.display(), key.display()))
        })?;
    let mut config = config;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Says on stderr when users other than the key file's owner may read it.
fn warn_if_shared(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(key) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: --tls-key {} may be read by users other than its owner (mode {:04o}); run chmod 600 on it",
                key.display(),
                mode & 0o7777
            );
        }
    }
}

fn pem_error(flag: &str, path: &Path, e: rustls::pki_types::pem::Error) -> Error {
    match e {
        rustls::pki_types::pem::Error::Io(io) => Error::input(format!("cannot read {flag} {}: {io}", path.display())),
        // The PEM errors name a section or a line, not its content.
        e => Error::input(format!("{flag} {} is not valid PEM: {e}", path.display())),
    }
}

/// Accepts TCP connections on its own task and completes their TLS handshakes concurrently; axum takes the
/// connections that finished. Dropping it stops accepting.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(accept_loop(tcp, acceptor, tx));
        Ok(TlsListener { ready, local })
    }
}

async fn accept_loop(tcp: TcpListener, acceptor: TlsAcceptor, tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>) {
    loop {
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            () = tx.closed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: axum's own listener waits a moment the same way.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        super::no_delay(&stream);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(pair) => pair,
            // The accept loop only ends once this listener is gone; until then there is always a sender.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
