//! HTTPS to a cfgledger server: which certificates a client trusts. The system's roots always, plus a CA file
//! the caller names (`--ca-file`, `CFGLEDGER_CA_FILE`), for a server whose certificate a private CA signed.
//! TLS 1.2 and 1.3 only, on rustls's ring provider (ureq's own TLS stack). Plain `http://` needs none of it.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;

/// The certificates in the PEM file at `path`; an error names the file and says what is wrong with it.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path).and_then(|certs| certs.collect::<Result<Vec<_>, _>>()).map_err(
        |e| match e {
            rustls::pki_types::pem::Error::Io(e) => format!("cannot read the CA file {shown}: {e}"),
            e => format!("the CA file {shown} is not PEM: {e}"),
        },
    )?;
    if certs.is_empty() {
        return Err(format!("the CA file {shown} holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)"));
    }
    Ok(certs)
}

/// The system's trusted roots (the OS store, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), plus the certificates of
/// `ca_file`. A system store that cannot be read is not an error when a CA file is given.
pub fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("the CA file {} holds a certificate rustls cannot use: {e}", path.display()))?;
        }
    }
    if roots.is_empty() {
        return Err("no trusted root certificate: the system store is empty; give a CA file (--ca-file)".into());
    }
    Ok(roots)
}

/// The crypto provider every TLS configuration of cfgledger uses (named, not the process default, so that
/// another crate enabling a second provider cannot make the choice ambiguous).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting [`root_store`], TLS 1.2 and 1.3 only.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = root_store(ca_file)?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `builder` set up for `server`: with [`client_config`] when it is `https://`, unchanged for `http://`.
pub fn agent_builder(
    builder: ureq::AgentBuilder,
    server: &str,
    ca_file: Option<&Path>,
) -> Result<ureq::AgentBuilder, String> {
    let https = server.trim().get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    if !https {
        return Ok(builder);
    }
    Ok(builder.tls_config(client_config(ca_file)?))
}

/// A hint for a transport error that a certificate check caused, or nothing.
pub fn hint(error: &str) -> Option<&'static str> {
    let lower = error.to_ascii_lowercase();
    if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        Some("the server's certificate does not name the host of the URL")
    } else if lower.contains("unknownissuer") {
        Some("the server's certificate is not signed by a trusted CA: give the CA's certificate with --ca-file (or CFGLEDGER_CA_FILE)")
    } else if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
        Some("the server does not speak TLS there: is it served over plain http://?")
    } else {
        None
    }
}
