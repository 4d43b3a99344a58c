//! Deterministic randomness for synthetic data: every value is drawn from a ChaCha stream
//! seeded by a SHA-256 of named parts (LoginId, account, date, ...), so the same LoginId
//! always yields the same person, accounts and history, on any machine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

/// A seeded generator with a few helpers for realistic values.
#[derive(Debug)]
pub struct Seeded(ChaCha8Rng);

impl Seeded {
    pub fn new(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"finhook-sandbox-v1");
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        Self(ChaCha8Rng::from_seed(hasher.finalize().into()))
    }

    /// An integer in `low..=high`.
    pub fn int(&mut self, low: i64, high: i64) -> i64 {
        self.0.gen_range(low..=high)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.0.gen_bool(p.clamp(0.0, 1.0))
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.0.gen_range(0..items.len())]
    }

    /// An amount of money between `low` and `high` dollars, to the cent.
    pub fn money(&mut self, low: i64, high: i64) -> Decimal {
        Decimal::new(self.int(low * 100, high * 100), 2)
    }

    /// A GUID in Flinks' lower-case hyphenated form (version 4 layout).
    pub fn guid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.0.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
    }

    /// A string of `len` decimal digits.
    pub fn digits(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(b'0' + self.0.gen_range(0..10u8))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_parts_give_the_same_stream() {
        let (mut a, mut b) = (Seeded::new(&["login", "x"]), Seeded::new(&["login", "x"]));
        assert_eq!((a.guid(), a.int(0, 1_000_000)), (b.guid(), b.int(0, 1_000_000)));
        // Part boundaries matter: ("ab", "c") is not ("a", "bc").
        assert_ne!(Seeded::new(&["ab", "c"]).guid(), Seeded::new(&["a", "bc"]).guid());
    }
}
