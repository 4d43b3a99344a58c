//! Sealing endpoint secrets at rest with AES-256-GCM.
//!
//! Signing needs the endpoint secrets themselves, so the store cannot keep only a hash of
//! them; it keeps them sealed with an operator key instead, so that a copy of the database
//! (a backup, a replica, a dump) does not hand out the keys to forge webhooks. Each sealed
//! value is bound to its endpoint id as associated data, so values cannot be swapped
//! between endpoints either. Format: `enc1:` + base64(nonce ‖ ciphertext ‖ tag).

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use rand::RngCore;

const PREFIX: &str = "enc1:";
const NONCE_BYTES: usize = 12;

/// Why a key or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the secrets key must be standard base64 of exactly 32 bytes")]
    BadKey,
    #[error("a stored secret is not sealed (no enc1: prefix)")]
    NotSealed,
    #[error("a stored secret does not open with this key (wrong key, or the value was altered)")]
    CannotOpen,
}

/// The operator's key for secrets at rest. Never printed.
#[derive(Clone)]
pub struct SealingKey(Aes256Gcm);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

impl SealingKey {
    /// A fresh key and its base64 form, to be kept by the operator.
    pub fn generate() -> (Self, String) {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        (Self(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes))), encoded)
    }

    pub fn from_base64(encoded: &str) -> Result<Self, SealError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadKey);
        }
        Ok(Self(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes))))
    }

    /// Seals `plaintext`, bound to `context` (the endpoint id).
    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let payload = Payload { msg: plaintext.as_bytes(), aad: context.as_bytes() };
        // Encryption only fails for inputs larger than GCM allows (64 GiB).
        let sealed = self.0.encrypt(&nonce, payload).unwrap_or_default();
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Opens a value [`SealingKey::seal`] made for the same `context`.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, SealError> {
        let encoded = stored.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| SealError::CannotOpen)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(SealError::CannotOpen);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plain = self
            .0
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: context.as_bytes() })
            .map_err(|_| SealError::CannotOpen)?;
        String::from_utf8(plain).map_err(|_| SealError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let (key, encoded) = SealingKey::generate();
        let sealed = key.seal("whsec_abc", "ep_1");
        assert!(sealed.starts_with("enc1:") && !sealed.contains("whsec_abc"));
        assert_ne!(sealed, key.seal("whsec_abc", "ep_1"), "a fresh nonce every time");
        assert_eq!(key.open(&sealed, "ep_1"), Ok("whsec_abc".to_string()));
        assert_eq!(SealingKey::from_base64(&encoded).expect("key").open(&sealed, "ep_1"), Ok("whsec_abc".to_string()));
        assert_eq!(key.open(&sealed, "ep_2"), Err(SealError::CannotOpen), "bound to its endpoint");
        assert_eq!(SealingKey::generate().0.open(&sealed, "ep_1"), Err(SealError::CannotOpen));
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open(&String::from_utf8(tampered).expect("utf8"), "ep_1"), Err(SealError::CannotOpen));
        assert_eq!(key.open("whsec_abc", "ep_1"), Err(SealError::NotSealed));
        assert!(!format!("{key:?}").contains(&encoded));
        assert_eq!(SealingKey::from_base64("c2hvcnQ=").err(), Some(SealError::BadKey));
    }
}
