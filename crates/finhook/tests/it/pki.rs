//! Certificates made in the test with `rcgen`: a private CA, a server leaf for `localhost`,
//! a client certificate, and a TLS configuration that requires client certificates.

use std::sync::Arc;

use crate::helpers::install_crypto_provider;

/// A private CA, a leaf for `localhost` (only) and a client certificate, both signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
    pub client_pem: String,
    pub client_key_pem: String,
}

pub fn test_pki() -> TestPki {
    pki_with_leaf_validity(None)
}

/// [`test_pki`] whose `localhost` leaf expires `within` from now.
pub fn test_pki_expiring_in(within: chrono::Duration) -> TestPki {
    pki_with_leaf_validity(Some(within))
}

fn pki_with_leaf_validity(expires_in: Option<chrono::Duration>) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "finhook test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    if let Some(within) = expires_in {
        use chrono::Datelike;
        // rcgen takes whole days: the leaf ends at the midnight (UTC) that starts the day `within` from now.
        let day = |at: chrono::DateTime<chrono::Utc>| {
            rcgen::date_time_ymd(
                at.year(),
                u8::try_from(at.month()).expect("month"),
                u8::try_from(at.day()).expect("day"),
            )
        };
        leaf_params.not_before = day(chrono::Utc::now() - chrono::Duration::days(1));
        leaf_params.not_after = day(chrono::Utc::now() + within);
    }
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).expect("leaf");
    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client_params.distinguished_name.push(DnType::CommonName, "finhook.lender.example");
    let client = client_params.signed_by(&client_key, &ca, &ca_key).expect("client");
    TestPki {
        ca_pem: ca.pem(),
        leaf_pem: leaf.pem(),
        leaf_key_pem: leaf_key.serialize_pem(),
        client_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// The server side of mutual TLS: the `localhost` leaf, and only clients whose certificate
/// the test CA signed get through the handshake.
pub fn requiring_client_certificates(pki: &TestPki) -> axum_server::tls_rustls::RustlsConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("ca")).expect("root");
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().expect("verifier");
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(pki.leaf_pem.as_bytes()).expect("leaf")],
            PrivateKeyDer::from_pem_slice(pki.leaf_key_pem.as_bytes()).expect("key"),
        )
        .expect("server config");
    axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config))
}
