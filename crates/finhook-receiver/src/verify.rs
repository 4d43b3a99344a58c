//! Which signature a received webhook carries, and whether it holds.
//!
//! The Standard Webhooks headers are checked when present (finhook sends them); otherwise
//! `flinks-authenticity-key` (the only signature real Flinks sends). The cryptography is
//! `finhook_core::signing`, the very code the sender signs with.

use http::HeaderMap;

use finhook_core::secret::EndpointSecret;
use finhook_core::signing::{
    self, StandardHeaders, VerifyError, FLINKS_HEADER, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP,
};

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
    FlinksAuthenticityKey,
    /// Verification is switched off (`--no-verify`).
    Unverified,
}

/// Checks signatures with a set of secrets (several during a rotation).
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<ReceiverSecret>,
    tolerance_seconds: i64,
    enabled: bool,
}

impl Verifier {
    pub fn new(secrets: Vec<ReceiverSecret>) -> Self {
        Self { secrets, tolerance_seconds: signing::DEFAULT_TOLERANCE_SECONDS, enabled: true }
    }

    /// Accepts every webhook without checking; for local experiments only.
    pub fn disabled() -> Self {
        Self { secrets: Vec::new(), tolerance_seconds: 0, enabled: false }
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
            signing::verify_standard(&standard, received, body, now, self.tolerance_seconds)?;
            return Ok(Scheme::StandardWebhooks);
        }
        let keys: Vec<&[u8]> = self.secrets.iter().map(|s| s.raw.as_bytes()).collect();
        signing::verify_flinks_keys(&keys, header(FLINKS_HEADER), body)?;
        Ok(Scheme::FlinksAuthenticityKey)
    }
}
