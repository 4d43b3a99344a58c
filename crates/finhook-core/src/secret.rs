//! Endpoint signing secrets and API keys: generated from the OS RNG, never printed.
//!
//! `Debug` on these types shows only a redacted prefix, so a secret cannot leak through a
//! log line or a panic message. API keys are high-entropy random strings, so a plain
//! SHA-256 is the right hash at rest (a slow password hash buys nothing here).

use std::fmt;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const WHSEC_PREFIX: &str = "whsec_";

/// Why a string is not an acceptable endpoint secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("an endpoint secret starts with \"whsec_\"")]
    MissingPrefix,
    #[error("the part after \"whsec_\" must be standard base64")]
    NotBase64,
    #[error("the secret must hold between 24 and 64 random bytes")]
    BadLength,
}

/// An endpoint secret: `whsec_` followed by base64 of 24 to 64 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret(String);

impl EndpointSecret {
    /// A new secret of 32 random bytes, as the contract prescribes.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("{WHSEC_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(bytes)))
    }

    pub fn parse(value: &str) -> Result<Self, SecretError> {
        let encoded = value.strip_prefix(WHSEC_PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(Self(value.to_string()))
    }

    /// The full secret string, for signing and for showing once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key of the Standard Webhooks scheme: the bytes after `whsec_`, decoded.
    pub fn standard_key(&self) -> Vec<u8> {
        let encoded = self.0.strip_prefix(WHSEC_PREFIX).unwrap_or(&self.0);
        // `parse` and `generate` guarantee valid base64, so this never falls back.
        base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_default()
    }
}

impl fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecret(whsec_[redacted])")
    }
}

/// A bearer API key (`fhk_` + 43 base64url characters), shown to its owner once.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("fhk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn from_string(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The only form of the key the store keeps.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Lower-case hex SHA-256 of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl KeyHash {
    pub fn of(key: &str) -> Self {
        Self(hex(&Sha256::digest(key.as_bytes())))
    }

    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes as hex: a bearer token that is safe in a URL (`finhook listen --ui`).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_never_print() {
        let secret = EndpointSecret::generate();
        assert_eq!(EndpointSecret::parse(secret.expose()), Ok(secret.clone()));
        assert_eq!(secret.standard_key().len(), 32);
        assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
        let key = ApiKey::generate();
        assert!(!format!("{key:?}").contains(key.expose()));
        assert_eq!(key.hash(), KeyHash::of(key.expose()));
        assert_eq!(key.hash().as_str().len(), 64);
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(EndpointSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::MissingPrefix));
        assert_eq!(EndpointSecret::parse("whsec_%%%"), Err(SecretError::NotBase64));
        assert_eq!(EndpointSecret::parse("whsec_AAAA"), Err(SecretError::BadLength));
    }
}
