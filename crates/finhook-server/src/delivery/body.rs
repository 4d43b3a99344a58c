//! A callback's body on its way out, with the SHA-256 the delivery ledger records for it.

use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// The bytes a delivery sends, and the hex SHA-256 of exactly those bytes.
///
/// The ledger records, for each attempt, the hash of the body that was sent. Hashing it
/// again at every attempt was a fourth pass over each body (after ingest's and the two
/// signatures'), 3 % of the server's CPU at 9,000 callbacks/s. Here the hash travels with
/// the bytes instead: ingest hands over the very bytes it hashed ([`Body::hashed`]), and a
/// body read back from the store comes checked against the hash stored with its message
/// (`Store::payloads`), so what the ledger records is the hash of what goes on the wire,
/// and a stored copy that is not what was received is never sent.
#[derive(Clone)]
pub struct Body {
    bytes: Bytes,
    sha256: Arc<str>,
}

impl Body {
    /// `bytes`, hashed now.
    pub fn new(bytes: Bytes) -> Self {
        let sha256 = finhook_core::secret::hex(&Sha256::digest(&bytes)).into();
        Self { bytes, sha256 }
    }

    /// `bytes` with `sha256`, the hex SHA-256 the caller computed over these very bytes
    /// (ingest's, stored with the message). Checked in debug builds, so every test checks it.
    pub fn hashed(bytes: Bytes, sha256: &str) -> Self {
        debug_assert_eq!(finhook_core::secret::hex(&Sha256::digest(&bytes)), sha256, "a body's hash is its own");
        Self { bytes, sha256: sha256.into() }
    }

    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Only the size: a body is a customer's financial data, and even its hash would let a
/// reader of the logs confirm a guess of it.
impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").field("bytes", &self.bytes.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_carries_the_hash_of_its_bytes_and_shows_neither() {
        let body = Body::new(Bytes::from_static(b"{\"Login\":{\"Id\":\"secret-login\"}}"));
        let expected = finhook_core::secret::hex(&Sha256::digest(b"{\"Login\":{\"Id\":\"secret-login\"}}"));
        assert_eq!(body.sha256(), expected);
        assert_eq!(Body::hashed(body.bytes().clone(), &expected).sha256(), expected);
        let shown = format!("{body:?}");
        assert!(!shown.contains("secret-login") && !shown.contains(&expected), "{shown}");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "a body's hash is its own")]
    fn a_hash_of_other_bytes_is_refused() {
        let _ = Body::hashed(Bytes::from_static(b"{}"), &"0".repeat(64));
    }
}
