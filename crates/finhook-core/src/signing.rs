//! The two signature schemes on every outbound webhook, for signing and for verifying.
//!
//! - Flinks: `flinks-authenticity-key: base64(HMAC-SHA256(utf8(secret), body))`.
//! - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>`
//!   with `key` the base64-decoded part of the secret after `whsec_`; one signature per
//!   valid secret during a rotation, space-separated.
//!
//! Both HMACs are computed with RustCrypto's `hmac` and `sha2`. Standard Webhooks signing
//! was first delegated to the spec's own `standardwebhooks` crate; its pure-Rust SHA-256
//! (no SHA extensions) was 6.5 % of the server's CPU per 8 KiB callback in a profile
//! (`perf record`, 2026-11-28), where `sha2` uses the CPU's SHA instructions. The crate
//! stays as the tests' oracle: both must give the same signature for every body. Its
//! `verify` reads the wall clock and takes one secret, so verification here compares
//! against `standard_signature` with an injected "now" and any number of secrets, in
//! constant time.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::EndpointSecret;

pub mod asymmetric;

pub const FLINKS_HEADER: &str = "flinks-authenticity-key";
pub const WEBHOOK_ID: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";
/// With `v1a` signatures: the `kid` of each `v1a` entry of `webhook-signature`, in the same
/// order, space-separated, so that a receiver holding a JWK set picks the key at once. The
/// spec's entries are `version,signature` and have no room for it, and receivers that do
/// not know this header still verify by trying each key.
pub const SIGNATURE_KID: &str = "finhook-signature-kid";
/// A delivery's place among the callbacks of its LoginId sent to its endpoint, from 1 and
/// without gaps, so a receiver can tell it missed one (absent for a callback without a
/// LoginId). Not covered by the signature: it helps to find a gap, it proves nothing.
pub const WEBHOOK_SEQUENCE: &str = "webhook-sequence";

/// How far a `webhook-timestamp` may be from the receiver's clock, either way.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a body could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("no signing secret is configured")]
    NoSecret,
    #[error("the endpoint signs with ed25519 and its instance has no signing key")]
    NoSigningKey,
}

/// Why a received webhook failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is malformed")]
    InvalidHeader(&'static str),
    #[error("the webhook-timestamp is more than the tolerance in the past")]
    TimestampTooOld,
    #[error("the webhook-timestamp is more than the tolerance in the future")]
    TimestampInFuture,
    #[error("no signature matches any configured secret")]
    SignatureMismatch,
    #[error("no verification secret is configured")]
    NoSecret,
}

/// The signature headers of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    pub flinks_authenticity_key: String,
    pub webhook_id: String,
    pub webhook_timestamp: i64,
    pub webhook_signature: String,
    /// [`SIGNATURE_KID`]: set when the signatures are `v1a`.
    pub signature_kids: Option<String>,
}

/// Signs `body` for one attempt of an endpoint that signs with Ed25519: `v1a` entries by
/// each of `keys` (the instance's valid keys, current first) in place of the `v1` HMACs;
/// the Flinks header stays the HMAC with the newest of `secrets`.
pub fn sign_v1a(
    secrets: &[EndpointSecret],
    keys: &[&asymmetric::SigningKey],
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<SignatureHeaders, SigningError> {
    let newest = secrets.first().ok_or(SigningError::NoSecret)?;
    if keys.is_empty() {
        return Err(SigningError::NoSigningKey);
    }
    let content = asymmetric::signed_content(webhook_id, timestamp, body);
    let entries: Vec<String> = keys.iter().map(|key| key.sign_content(&content)).collect();
    let kids: Vec<&str> = keys.iter().map(|key| key.kid()).collect();
    Ok(SignatureHeaders {
        flinks_authenticity_key: flinks_authenticity_key(newest, body),
        webhook_id: webhook_id.to_string(),
        webhook_timestamp: timestamp,
        webhook_signature: entries.join(" "),
        signature_kids: Some(kids.join(" ")),
    })
}

/// Signs `body` for one attempt. `secrets` are the endpoint's valid secrets, newest first:
/// the newest signs the Flinks header (it has room for one), every one signs a Standard
/// Webhooks signature.
pub fn sign(
    secrets: &[EndpointSecret],
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<SignatureHeaders, SigningError> {
    let newest = secrets.first().ok_or(SigningError::NoSecret)?;
    let signatures: Vec<String> =
        secrets.iter().map(|secret| standard_signature(secret, webhook_id, timestamp, body)).collect();
    Ok(SignatureHeaders {
        flinks_authenticity_key: flinks_authenticity_key(newest, body),
        webhook_id: webhook_id.to_string(),
        webhook_timestamp: timestamp,
        webhook_signature: signatures.join(" "),
        signature_kids: None,
    })
}

/// `base64(HMAC-SHA256(key = UTF-8 bytes of the secret string, message = body))`.
pub fn flinks_authenticity_key(secret: &EndpointSecret, body: &[u8]) -> String {
    flinks_authenticity_key_with(secret.expose().as_bytes(), body)
}

/// [`flinks_authenticity_key`] with any key: Flinks issues its own HMAC secrets.
pub fn flinks_authenticity_key_with(key: &[u8], body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(flinks_mac(key, body).finalize().into_bytes())
}

/// One `v1,<base64>` Standard Webhooks signature.
pub fn standard_signature(secret: &EndpointSecret, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac_sha256(&secret.standard_key());
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Verifies a `flinks-authenticity-key` value against any of `secrets`, in constant time.
pub fn verify_flinks(secrets: &[EndpointSecret], header: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
    let keys: Vec<&[u8]> = secrets.iter().map(|s| s.expose().as_bytes()).collect();
    verify_flinks_keys(&keys, header, body)
}

/// [`verify_flinks`] for secret strings of any shape: Flinks issues its own HMAC secrets,
/// which need not look like `whsec_…`.
pub fn verify_flinks_keys(secrets: &[&[u8]], header: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
    let header = header.ok_or(VerifyError::MissingHeader(FLINKS_HEADER))?;
    let received = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| VerifyError::InvalidHeader(FLINKS_HEADER))?;
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    secrets
        .iter()
        .any(|secret| flinks_mac(secret, body).verify_slice(&received).is_ok())
        .then_some(())
        .ok_or(VerifyError::SignatureMismatch)
}

/// The three Standard Webhooks headers as received.
#[derive(Debug, Clone, Copy)]
pub struct StandardHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Verifies Standard Webhooks headers at `now` (Unix seconds) against any of `secrets`.
pub fn verify_standard(
    secrets: &[EndpointSecret],
    headers: StandardHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let (id, timestamp, signature) = checked_headers(headers, now, tolerance_seconds)?;
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let received: Vec<&str> = entries(signature, "v1").collect();
    for secret in secrets {
        let expected = standard_signature(secret, id, timestamp, body);
        let expected = expected.split_once(',').map(|(_, value)| value).unwrap_or_default();
        if received.iter().any(|value| bool::from(value.as_bytes().ct_eq(expected.as_bytes()))) {
            return Ok(());
        }
    }
    Err(VerifyError::SignatureMismatch)
}

/// The values of the `version,value` entries of a `webhook-signature` list with this
/// version; entries of other versions are skipped, as the spec asks.
pub fn entries<'a>(signature: &'a str, version: &'a str) -> impl Iterator<Item = &'a str> {
    signature
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(move |(v, _)| *v == version)
        .map(|(_, value)| value)
}

/// The id, timestamp and signature list of Standard Webhooks headers, once each is present
/// and the timestamp is within `tolerance_seconds` of `now`.
fn checked_headers<'a>(
    headers: StandardHeaders<'a>,
    now: i64,
    tolerance_seconds: i64,
) -> Result<(&'a str, i64, &'a str), VerifyError> {
    let id = headers.id.ok_or(VerifyError::MissingHeader(WEBHOOK_ID))?;
    let timestamp = headers.timestamp.ok_or(VerifyError::MissingHeader(WEBHOOK_TIMESTAMP))?;
    let signature = headers.signature.ok_or(VerifyError::MissingHeader(WEBHOOK_SIGNATURE))?;
    let timestamp: i64 = timestamp.trim().parse().map_err(|_| VerifyError::InvalidHeader(WEBHOOK_TIMESTAMP))?;
    if now.saturating_sub(timestamp) > tolerance_seconds {
        return Err(VerifyError::TimestampTooOld);
    }
    if timestamp.saturating_sub(now) > tolerance_seconds {
        return Err(VerifyError::TimestampInFuture);
    }
    Ok((id, timestamp, signature))
}

fn flinks_mac(key: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = hmac_sha256(key);
    mac.update(body);
    mac
}

fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so construction cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

#[cfg(test)]
mod tests;
