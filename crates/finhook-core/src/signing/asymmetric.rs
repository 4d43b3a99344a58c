//! Standard Webhooks' asymmetric scheme, `v1a`: an Ed25519 signature over
//! `"{id}.{timestamp}.{body}"`, verifiable with a public key the receiver need not keep
//! secret, published as a JSON Web Key set (RFC 7517, keys of RFC 8037's `OKP` type).
//!
//! Keys as text: `whsk_` + base64 of the 32-byte seed and the 32-byte public key (the
//! 64-byte form libsodium and most Ed25519 libraries call the secret key; a bare 32-byte
//! seed is read too), `whpk_` + base64 of the 32-byte public key. A key's id (`kid`) is its
//! RFC 7638 JWK thumbprint, so anyone can recompute it from the public key alone.
//!
//! The Ed25519 arithmetic is `ring`'s, already in the build for TLS; here is only the
//! encoding around it, which no crate of this ecosystem provides for Standard Webhooks'
//! `v1a` (the spec's reference libraries implement `v1` only).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SecureRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{checked_headers, entries, StandardHeaders, VerifyError};

/// The version tag of an Ed25519 signature in `webhook-signature`.
pub const V1A: &str = "v1a";
const SECRET_PREFIX: &str = "whsk_";
const PUBLIC_PREFIX: &str = "whpk_";

/// Why a key, a JWK or a JWK set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a signing key starts with whsk_ followed by base64")]
    NotASigningKey,
    #[error("a public key starts with whpk_ followed by base64")]
    NotAPublicKey,
    #[error("the key is {0} bytes; an Ed25519 {1} is 32 bytes")]
    Length(usize, &'static str),
    #[error("the public half of the signing key does not belong to its seed")]
    Mismatch,
    #[error("the JWK is not an Ed25519 key (kty \"OKP\", crv \"Ed25519\"): kty {kty:?}, crv {crv:?}")]
    NotEd25519 { kty: String, crv: Option<String> },
    #[error("the JWK's x is not base64url of 32 bytes")]
    BadX,
    #[error("the JWK's kid {given:?} is not its thumbprint {expected:?}")]
    WrongKid { given: String, expected: String },
    #[error("the key set holds no Ed25519 key")]
    Empty,
    #[error("no random bytes for a new key: {0}")]
    Random(String),
}

/// An Ed25519 signing key. Never printed: its `Debug` names only the public key's id.
pub struct SigningKey {
    seed: [u8; 32],
    pair: Ed25519KeyPair,
    /// The public key's thumbprint, named beside every signature this key makes.
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new().fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_seed(seed))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        // A 32-byte seed is always a valid Ed25519 private key.
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap_or_else(|_| unreachable!());
        let kid = public_of(&pair).kid();
        Self { seed, pair, kid }
    }

    /// Reads `whsk_…` (64 bytes: seed and public key, which must match; or a bare seed).
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bytes = decode_prefixed(text, SECRET_PREFIX).ok_or(KeyError::NotASigningKey)?;
        let seed: [u8; 32] =
            bytes.get(..32).and_then(|s| s.try_into().ok()).ok_or(KeyError::Length(bytes.len(), "seed"))?;
        let key = Self::from_seed(seed);
        match bytes.len() {
            32 => Ok(key),
            64 if bytes[32..] == key.public_key().0 => Ok(key),
            64 => Err(KeyError::Mismatch),
            other => Err(KeyError::Length(other, "seed")),
        }
    }

    /// `whsk_` + base64(seed ‖ public key). A secret: store it sealed, never log it.
    pub fn expose_text(&self) -> String {
        let mut bytes = self.seed.to_vec();
        bytes.extend_from_slice(&self.public_key().0);
        format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
    }

    pub fn public_key(&self) -> PublicKey {
        public_of(&self.pair)
    }

    /// The public key's id (its RFC 7638 thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// One `v1a,<base64>` entry for `webhook-signature`.
    pub fn sign_v1a(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        self.sign_content(&signed_content(webhook_id, timestamp, body))
    }

    /// One `v1a,<base64>` entry over content already joined by [`signed_content`] (built
    /// once when several keys sign).
    pub fn sign_content(&self, content: &[u8]) -> String {
        format!("{V1A},{}", STANDARD.encode(self.pair.sign(content).as_ref()))
    }
}

fn public_of(pair: &Ed25519KeyPair) -> PublicKey {
    let mut key = [0u8; 32];
    key.copy_from_slice(pair.public_key().as_ref());
    PublicKey(key)
}

/// The base64 after `prefix`, decoded.
fn decode_prefixed(text: &str, prefix: &str) -> Option<Vec<u8>> {
    text.trim().strip_prefix(prefix).and_then(|b64| STANDARD.decode(b64).ok())
}

/// An Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Reads `whpk_…`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bytes = decode_prefixed(text, PUBLIC_PREFIX).ok_or(KeyError::NotAPublicKey)?;
        let len = bytes.len();
        bytes.try_into().map(Self).map_err(|_| KeyError::Length(len, "public key"))
    }

    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", STANDARD.encode(self.0))
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256 of the canonical JWK members, in
    /// lexicographic order, without spaces).
    pub fn kid(&self) -> String {
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(self.0));
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(URL_SAFE_NO_PAD.encode(self.0)),
            kid: Some(self.kid()),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
        }
    }

    /// Reads an Ed25519 JWK; a `kid` it carries must be the key's thumbprint.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.kty != "OKP" || jwk.crv.as_deref() != Some("Ed25519") {
            return Err(KeyError::NotEd25519 { kty: jwk.kty.clone(), crv: jwk.crv.clone() });
        }
        let bytes = jwk.x.as_deref().and_then(|x| URL_SAFE_NO_PAD.decode(x).ok()).ok_or(KeyError::BadX)?;
        let key = Self(bytes.try_into().map_err(|_| KeyError::BadX)?);
        match &jwk.kid {
            Some(given) if *given != key.kid() => Err(KeyError::WrongKid { given: given.clone(), expected: key.kid() }),
            _ => Ok(key),
        }
    }

    fn verifies(&self, content: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.0).verify(content, signature).is_ok()
    }
}

/// One JSON Web Key, as much of it as Ed25519 needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

/// A JWK set: `{"keys": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    pub fn of(keys: &[PublicKey]) -> Self {
        Self { keys: keys.iter().map(PublicKey::to_jwk).collect() }
    }

    /// The Ed25519 keys of the set. Keys of other types are skipped (a set may hold them);
    /// a malformed Ed25519 key, or none at all, is an error.
    pub fn ed25519_keys(&self) -> Result<Vec<PublicKey>, KeyError> {
        let keys = self
            .keys
            .iter()
            .filter(|jwk| jwk.kty == "OKP" && jwk.crv.as_deref() == Some("Ed25519"))
            .map(PublicKey::from_jwk)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(keys)
    }
}

/// Verifies the `v1a` entries of Standard Webhooks headers at `now` (Unix seconds): the
/// timestamp within `tolerance_seconds`, and some entry signed by one of `keys`. Entries of
/// other versions are ignored, as the spec asks.
pub fn verify_v1a(
    keys: &[PublicKey],
    headers: StandardHeaders<'_>,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), VerifyError> {
    let (id, timestamp, signature) = checked_headers(headers, now, tolerance_seconds)?;
    if keys.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let content = signed_content(id, timestamp, body);
    let verified = entries(signature, V1A)
        .filter_map(|value| STANDARD.decode(value).ok())
        .any(|signature| keys.iter().any(|key| key.verifies(&content, &signature)));
    verified.then_some(()).ok_or(VerifyError::SignatureMismatch)
}

/// `"{id}.{timestamp}.{body}"`, what a `v1a` signature covers.
pub fn signed_content(webhook_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut content = Vec::with_capacity(webhook_id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(webhook_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

#[cfg(test)]
mod tests;
