//! Which signature a received webhook carries, and whether it holds.
//!
//! The Standard Webhooks headers are checked when present (finhook sends them); otherwise
//! `flinks-authenticity-key` (the only signature real Flinks sends). Standard Webhooks
//! `v1a` (Ed25519) signatures are checked with public keys, given or fetched from the
//! sender's JWK set ([`crate::jwks`]). The cryptography is `finhook_core::signing`, the very
//! code the sender signs with.

use std::sync::Arc;

use http::HeaderMap;

use finhook_core::signing::asymmetric::{self, PublicKey};

use finhook_core::secret::EndpointSecret;
use finhook_core::signing::{
    self, StandardHeaders, VerifyError, FLINKS_HEADER, SIGNATURE_KID, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
};

use crate::jwks::{JwksCache, JwksError};

/// A verification secret. Any string verifies `flinks-authenticity-key`; a `whsec_…`
/// secret verifies Standard Webhooks signatures too.
#[derive(Clone)]
pub struct ReceiverSecret {
    raw: String,
    standard: Option<EndpointSecret>,
}

impl ReceiverSecret {
    pub fn new(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        let standard = EndpointSecret::parse(&raw).ok();
        Self { raw, standard }
    }
}

impl std::fmt::Debug for ReceiverSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReceiverSecret([redacted])")
    }
}

/// The scheme a webhook was verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    StandardWebhooks,
    /// Standard Webhooks `v1a`: Ed25519, checked with a public key.
    StandardWebhooksEd25519,
    FlinksAuthenticityKey,
    /// Verification is switched off (`--no-verify`).
    Unverified,
}

/// Checks signatures with a set of secrets (several during a rotation).
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<ReceiverSecret>,
    public_keys: Vec<PublicKey>,
    jwks: Option<Arc<JwksCache>>,
    tolerance_seconds: i64,
    enabled: bool,
}

impl Verifier {
    pub fn new(secrets: Vec<ReceiverSecret>) -> Self {
        Self {
            secrets,
            public_keys: Vec::new(),
            jwks: None,
            tolerance_seconds: signing::DEFAULT_TOLERANCE_SECONDS,
            enabled: true,
        }
    }

    /// Also accepts `v1a` signatures by these public keys.
    pub fn with_public_keys(mut self, keys: Vec<PublicKey>) -> Self {
        self.public_keys = keys;
        self
    }

    /// Also accepts `v1a` signatures by the keys of this JWK set (see [`Verifier::prepare`]).
    pub fn with_jwks(mut self, jwks: JwksCache) -> Self {
        self.jwks = Some(Arc::new(jwks));
        self
    }

    /// Before [`Verifier::verify`], for a `v1a` signature: makes sure the JWK set, if any, is
    /// fetched and knows the keys the headers name.
    pub async fn prepare(&self, headers: &HeaderMap) -> Result<(), JwksError> {
        let Some(jwks) = &self.jwks else { return Ok(()) };
        if !self.enabled || !is_asymmetric(headers) {
            return Ok(());
        }
        let kids: Vec<&str> = headers
            .get(SIGNATURE_KID)
            .and_then(|v| v.to_str().ok())
            .map(|kids| kids.split(' ').filter(|kid| !kid.is_empty()).collect())
            .unwrap_or_default();
        jwks.refresh_if_needed(&kids).await
    }

    /// Accepts every webhook without checking; for local experiments only.
    pub fn disabled() -> Self {
        Self { secrets: Vec::new(), public_keys: Vec::new(), jwks: None, tolerance_seconds: 0, enabled: false }
    }

    pub fn with_tolerance(mut self, seconds: i64) -> Self {
        self.tolerance_seconds = seconds;
        self
    }

    /// Verifies `body` as received with `headers`, at `now` (Unix seconds).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Scheme, VerifyError> {
        if !self.enabled {
            return Ok(Scheme::Unverified);
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let standard_present =
            [WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE].iter().any(|name| headers.contains_key(*name));
        if standard_present {
            let standard: Vec<EndpointSecret> = self.secrets.iter().filter_map(|s| s.standard.clone()).collect();
            let received = StandardHeaders {
                id: header(WEBHOOK_ID),
                timestamp: header(WEBHOOK_TIMESTAMP),
                signature: header(WEBHOOK_SIGNATURE),
            };
            if is_asymmetric(headers) && (!self.public_keys.is_empty() || self.jwks.is_some()) {
                let mut keys = self.public_keys.clone();
                keys.extend(self.jwks.iter().flat_map(|jwks| jwks.keys()));
                asymmetric::verify_v1a(&keys, received, body, now, self.tolerance_seconds)?;
                return Ok(Scheme::StandardWebhooksEd25519);
            }
            signing::verify_standard(&standard, received, body, now, self.tolerance_seconds)?;
            return Ok(Scheme::StandardWebhooks);
        }
        let keys: Vec<&[u8]> = self.secrets.iter().map(|s| s.raw.as_bytes()).collect();
        signing::verify_flinks_keys(&keys, header(FLINKS_HEADER), body)?;
        Ok(Scheme::FlinksAuthenticityKey)
    }
}

/// Whether `webhook-signature` carries a `v1a` entry.
fn is_asymmetric(headers: &HeaderMap) -> bool {
    headers
        .get(WEBHOOK_SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|signature| signing::entries(signature, asymmetric::V1A).next().is_some())
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    fn vectors() -> serde_json::Value {
        let path = format!("{}/../../testdata/signatures.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or_default()
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("")),
            );
        }
        map
    }

    #[test]
    fn the_published_vectors_verify_through_the_receiver() {
        let v = vectors();
        let sw = &v["standard_webhooks"];
        let timestamp = sw["webhook_timestamp"].as_i64().unwrap_or_default();
        let verifier = Verifier::new(vec![
            ReceiverSecret::new("whsec_not_this_one_AAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ReceiverSecret::new(sw["secret"].as_str().unwrap_or_default()),
        ]);
        let received = headers(&[
            ("webhook-id", sw["webhook_id"].as_str().unwrap_or_default().to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", sw["webhook_signature"].as_str().unwrap_or_default().to_string()),
        ]);
        let payload = sw["payload"].as_str().unwrap_or_default().as_bytes();
        assert_eq!(verifier.verify(&received, payload, timestamp), Ok(Scheme::StandardWebhooks));
        assert_eq!(verifier.verify(&received, payload, timestamp + 301), Err(VerifyError::TimestampTooOld));

        let fl = &v["flinks_authenticity_key"];
        let body =
            std::fs::read(format!("{}/../../testdata/flinks/kyc.json", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default();
        let flinks_only = Verifier::new(vec![ReceiverSecret::new(fl["secret"].as_str().unwrap_or_default())]);
        let received = headers(&[("flinks-authenticity-key", fl["value"].as_str().unwrap_or_default().to_string())]);
        assert_eq!(flinks_only.verify(&received, &body, 0), Ok(Scheme::FlinksAuthenticityKey));
        assert_eq!(
            flinks_only.verify(&HeaderMap::new(), &body, 0),
            Err(VerifyError::MissingHeader("flinks-authenticity-key"))
        );
        // Flinks issues its own HMAC secrets; any string works for its scheme.
        let plain = Verifier::new(vec![ReceiverSecret::new("flinks-issued-secret")]);
        let value = finhook_core::signing::flinks_authenticity_key_with(b"flinks-issued-secret", &body);
        assert_eq!(
            plain.verify(&headers(&[("flinks-authenticity-key", value)]), &body, 0),
            Ok(Scheme::FlinksAuthenticityKey)
        );
        assert_eq!(
            plain.verify(&headers(&[("flinks-authenticity-key", "x".to_string())]), &body, 0),
            Err(VerifyError::InvalidHeader("flinks-authenticity-key"))
        );
        assert_eq!(Verifier::disabled().verify(&HeaderMap::new(), b"{}", 0), Ok(Scheme::Unverified));
    }

    #[test]
    fn a_v1a_signature_verifies_with_a_public_key_and_not_with_a_secret() {
        use finhook_core::signing::asymmetric::SigningKey;
        let key = SigningKey::generate().expect("key");
        let (id, timestamp, body) = ("msg_1", 1_700_000_000_i64, br#"{"ResponseType":"KYC"}"#.as_slice());
        let received = headers(&[
            ("webhook-id", id.to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", key.sign_v1a(id, timestamp, body)),
        ]);
        let with_key = Verifier::new(vec![]).with_public_keys(vec![key.public_key()]);
        assert_eq!(with_key.verify(&received, body, timestamp), Ok(Scheme::StandardWebhooksEd25519));
        assert_eq!(with_key.verify(&received, b"{}", timestamp), Err(VerifyError::SignatureMismatch));
        let other = Verifier::new(vec![]).with_public_keys(vec![SigningKey::generate().expect("key").public_key()]);
        assert_eq!(other.verify(&received, body, timestamp), Err(VerifyError::SignatureMismatch));
        let secret_only = Verifier::new(vec![ReceiverSecret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]);
        assert_eq!(secret_only.verify(&received, body, timestamp), Err(VerifyError::SignatureMismatch));
    }
}
