//! TLS to PostgreSQL with libpq's parameters: `sslmode=disable|prefer|require|verify-ca|verify-full` and
//! `sslrootcert=FILE` (or `system`), read from the store URL's query, over rustls (`tokio-postgres-rustls`).
//! The postgres crate knows only `disable`, `prefer` and `require`, so the two are taken out of the URL here
//! and the certificate checks are this module's verifiers.
//!
//! As in libpq: `prefer` (the default) and `require` encrypt without checking the certificate, `require` with
//! a root certificate given checks the chain like `verify-ca`, `verify-ca` checks the chain against the root
//! certificates, and `verify-full` checks the chain and that the certificate names the host. A `verify-*`
//! without `sslrootcert` reads `~/.postgresql/root.crt`.

use crate::store::StoreError;
use postgres::config::SslMode as WireMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, StoreError> {
        match text {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            // libpq's `allow` tries without TLS first; cfgledger never downgrades on purpose.
            other => Err(StoreError::Url(format!(
                "database URL: sslmode expects disable, prefer, require, verify-ca or verify-full; got {other:?}"
            ))),
        }
    }
}

/// The TLS parameters of a store URL, and the URL without them (what the postgres crate parses).
#[derive(Debug, PartialEq, Eq)]
pub struct UrlTls {
    pub url: String,
    pub mode: SslMode,
    pub root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of the query of `url` (`postgres://...?...`).
pub fn split_url(url: &str) -> Result<UrlTls, StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sslmode" => mode = Some(SslMode::parse(&percent_decode(value)?)?),
            "sslrootcert" => root_cert = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok(UrlTls { url, mode: mode.unwrap_or(SslMode::Prefer), root_cert })
}

fn percent_decode(text: &str) -> Result<String, StoreError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let byte = hex.ok_or_else(|| StoreError::Url(format!("database URL: bad percent-escape in {text:?}")))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| StoreError::Url(format!("database URL: {text:?} is not UTF-8")))
}

/// What the postgres crate is told, and the connector that does the TLS: built once per store.
pub fn connector(mode: SslMode, root_cert: Option<&str>) -> Result<(WireMode, MakeRustlsConnect), StoreError> {
    let provider = cfgledger_client::tls::provider();
    // libpq: a root certificate given to `require` makes it check the chain as `verify-ca` does.
    let mode = if mode == SslMode::Require && root_cert.is_some() { SslMode::VerifyCa } else { mode };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(EncryptOnly(provider.clone())),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = Arc::new(roots(mode, root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| StoreError::Url(format!("database URL: sslrootcert cannot be used: {e}")))?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly { roots, signatures: webpki, provider: provider.clone() })
            }
        }
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StoreError::Unavailable(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let wire = match mode {
        SslMode::Disable => WireMode::Disable,
        SslMode::Prefer => WireMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => WireMode::Require,
    };
    Ok((wire, MakeRustlsConnect::new(config)))
}

/// The root certificates of a `verify-*` mode: `sslrootcert`'s file, the system's (`system`), or libpq's
/// default `~/.postgresql/root.crt`.
fn roots(mode: SslMode, root_cert: Option<&str>) -> Result<RootCertStore, StoreError> {
    let name = if mode == SslMode::VerifyFull { "verify-full" } else { "verify-ca" };
    if root_cert == Some("system") {
        return cfgledger_client::tls::root_store(None).map_err(|e| StoreError::Url(format!("database URL: {e}")));
    }
    let path = match root_cert {
        Some(path) => PathBuf::from(path),
        None => {
            let default = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".postgresql/root.crt"));
            match default.filter(|p| p.exists()) {
                Some(path) => path,
                None => {
                    return Err(StoreError::Url(format!(
                        "database URL: sslmode={name} checks the server's certificate, so it needs \
                         sslrootcert=FILE (the CA's PEM certificate) or sslrootcert=system, and \
                         ~/.postgresql/root.crt does not exist"
                    )))
                }
            }
        }
    };
    let mut roots = RootCertStore::empty();
    let certs = cfgledger_client::tls::read_ca_file(&path)
        .map_err(|e| StoreError::Url(format!("database URL sslrootcert: {e}")))?;
    for cert in certs {
        roots.add(cert).map_err(|e| {
            StoreError::Url(format!("database URL sslrootcert {} holds an unusable certificate: {e}", path.display()))
        })?;
    }
    Ok(roots)
}

/// `prefer` and `require`: the connection is encrypted and the server proves it holds its certificate's key,
/// but whose certificate it is goes unchecked (libpq does the same).
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a root certificate; the host name is not compared. The chain is checked
/// by rustls's own chain check alone (`verify_server_cert_signed_by_trust_anchor`), not by reading a name error
/// from the full check as if it meant the chain was good.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    /// The full verifier, for the handshake signatures.
    signatures: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signatures.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.signatures.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_leave_the_url() {
        let t =
            split_url("postgres://u@h:5/db?connect_timeout=2&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem").unwrap();
        assert_eq!(t.url, "postgres://u@h:5/db?connect_timeout=2");
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(t.root_cert.as_deref(), Some("/tmp/ca.pem"));
        let plain = split_url("postgres://u@h/db").unwrap();
        assert_eq!((plain.url.as_str(), plain.mode, plain.root_cert), ("postgres://u@h/db", SslMode::Prefer, None));
        let only = split_url("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!((only.url.as_str(), only.mode), ("postgres://u@h/db", SslMode::Disable));
    }

    #[test]
    fn unknown_modes_and_missing_roots_are_refused_by_name() {
        let e = split_url("postgres://h/db?sslmode=allow").unwrap_err().to_string();
        assert!(e.contains("sslmode expects") && e.contains("\"allow\""), "{e}");
        let e = connector(SslMode::VerifyFull, Some("/nonexistent/ca.pem")).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
