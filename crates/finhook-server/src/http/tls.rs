//! TLS for `finhook serve` itself (`--tls-cert`/`--tls-key`, rustls): the dashboard's key,
//! its session cookie and the API keys then never cross the network in clear.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why the server's own certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("--tls-cert and --tls-key go together: give both or neither")]
    Half,
    #[error("could not read the certificate chain {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("could not read the private key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the certificate and the key do not make a TLS server: {0}")]
    Config(#[from] rustls::Error),
}

/// The server's TLS acceptor (its key is inside; never printed).
#[derive(Clone)]
pub struct ServerTls(pub TlsAcceptor);

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls { .. }")
    }
}

/// The acceptor for `cert` (a PEM chain, the leaf first) and `key` (PEM), if both are given.
pub fn acceptor(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<ServerTls>, TlsError> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err(TlsError::Half),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Certificate { path: cert.display().to_string(), reason: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate { path: cert.display().to_string(), reason: "no certificate in it".into() });
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Key { path: key.display().to_string(), reason: e.to_string() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(ServerTls(TlsAcceptor::from(Arc::new(config)))))
}
