//! Client certificates for mutual TLS: an endpoint may present one on every attempt.
//! Checked when given (PEM that parses, a key that belongs to the certificate), and read
//! for what the API shows: the subject and when the certificate expires.

use chrono::{DateTime, Utc};

use super::ClientCertificateInfo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a client certificate was refused; each names the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("cert_pem holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    #[error("cert_pem is not a readable X.509 certificate: {0}")]
    BadCertificate(String),
    #[error("key_pem holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey,
    #[error("key_pem is a kind of key TLS cannot sign with: {0}")]
    UnusableKey(String),
    #[error("key_pem does not belong to the certificate of cert_pem")]
    Mismatch,
}

impl IdentityError {
    /// The JSON field of `client_certificate` the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::NoCertificate | Self::BadCertificate(_) => "cert_pem",
            Self::NoKey | Self::UnusableKey(_) | Self::Mismatch => "key_pem",
        }
    }
}

/// A checked client certificate with its key. The key never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub cert_pem: String,
    key_pem: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    /// SHA-256 of the certificate and key: which client presents this identity.
    pub fingerprint: [u8; 32],
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// Checks `cert_pem` (the leaf first, then any intermediates) and `key_pem`.
    pub fn parse(cert_pem: &str, key_pem: &str) -> Result<Self, IdentityError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let leaf = certs.first().ok_or(IdentityError::NoCertificate)?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(leaf).map_err(|e| IdentityError::BadCertificate(e.to_string()))?;
        let not_after = DateTime::from_timestamp(parsed.validity().not_after.timestamp(), 0)
            .ok_or_else(|| IdentityError::BadCertificate("its expiry is out of range".into()))?;
        let subject = parsed.subject().to_string();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| IdentityError::NoKey)?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| IdentityError::UnusableKey(e.to_string()))?;
        rustls::sign::CertifiedKey::new(certs, signing).keys_match().map_err(|_| IdentityError::Mismatch)?;
        let fingerprint = {
            use sha2::Digest;
            let mut hasher = sha2::Sha256::new();
            hasher.update(cert_pem.as_bytes());
            hasher.update(key_pem.as_bytes());
            hasher.finalize().into()
        };
        Ok(Self { cert_pem: cert_pem.to_string(), key_pem: key_pem.to_string(), subject, not_after, fingerprint })
    }

    /// What the API shows of it.
    pub fn info(&self) -> ClientCertificateInfo {
        ClientCertificateInfo { subject: self.subject.clone(), expires_at: self.not_after }
    }

    /// The private key, PEM: only for sealing it and for the TLS client.
    pub fn expose_key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate and key as reqwest takes them (one PEM buffer).
    pub fn reqwest_identity(&self) -> Result<reqwest::Identity, reqwest::Error> {
        reqwest::Identity::from_pem(format!("{}\n{}", self.cert_pem, self.key_pem).as_bytes())
    }
}
