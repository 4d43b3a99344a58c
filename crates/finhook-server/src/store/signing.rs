//! How finhook proves itself to an endpoint: how its webhooks are signed, the instance
//! keys behind `v1a` signatures, and the client certificate of mutual TLS.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use finhook_core::signing::asymmetric::{PublicKey, SigningKey};

/// What signs an endpoint's `webhook-signature` (the `flinks-authenticity-key` is always an
/// HMAC with the endpoint's secret).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Signing {
    /// Standard Webhooks `v1`: HMAC-SHA256 with the endpoint's `whsec_` secret.
    #[default]
    Hmac,
    /// Standard Webhooks `v1a`: Ed25519 with the instance's keys, published as a JWK set.
    Ed25519,
}

impl Signing {
    pub fn as_str(self) -> &'static str {
        match self {
            Signing::Hmac => "hmac",
            Signing::Ed25519 => "ed25519",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hmac" => Some(Signing::Hmac),
            "ed25519" => Some(Signing::Ed25519),
            _ => None,
        }
    }
}

/// One of an instance's signing keys, public half only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceKey {
    pub kid: String,
    pub public_key: PublicKey,
    pub created_at: DateTime<Utc>,
    /// `None` for a key that signs until the next rotation.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What is shown of an endpoint's client certificate (never its key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ClientCertificateInfo {
    /// The certificate's subject, e.g. `CN=finhook.lender.example`.
    pub subject: String,
    pub expires_at: DateTime<Utc>,
}

/// Opened signing keys for the worker, each with the time it stops signing.
pub type OpenedKeys = Vec<(Arc<SigningKey>, Option<DateTime<Utc>>)>;
