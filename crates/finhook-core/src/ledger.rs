//! The delivery ledger's chain: what one entry's hash covers, and the offline check of an
//! exported chain that names its first broken link.
//!
//! Each delivery attempt becomes an entry of its instance's chain. An entry's hash is
//! `SHA-256(prev_hash || canonical bytes)`, where `prev_hash` is the 32 raw bytes of the
//! previous entry's hash (32 zero bytes before the first entry, seq 1) and the canonical
//! bytes are the entry's fields as netstrings (`<length>:<bytes>,`, the length in decimal
//! bytes), in this order: the tag `finhook-ledger-v1`, instance, seq, attempt id, message
//! id, body SHA-256 (hex), endpoint URL as attempted, attempt number, attempted at (the
//! exported RFC 3339 text, byte for byte), HTTP status (empty if none), error class (empty
//! if none). Netstrings make the encoding unambiguous whatever a field holds, and simple
//! to reproduce in any language. A chain exported in full is anchored on the genesis hash;
//! one exported from the middle is anchored on its first `prev_hash`, which the reader
//! compares with a head written down earlier.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::secret::hex;

/// The tag that opens every entry's canonical bytes: the version of this encoding.
pub const CANONICAL_TAG: &str = "finhook-ledger-v1";

/// The `prev_hash` of an instance's first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// What an attempt puts in the ledger, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerFacts {
    /// The instance's name.
    pub instance: String,
    pub attempt_id: String,
    pub message_id: String,
    /// SHA-256 of the callback's body as received, in lowercase hex.
    pub body_sha256: String,
    /// The endpoint's URL when the attempt was made.
    pub endpoint_url: String,
    /// 1-based.
    pub attempt: u32,
    /// When the attempt started: RFC 3339, UTC, milliseconds (`2026-11-29T14:02:00.123Z`).
    pub attempted_at: String,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why the attempt failed (`http`, `timeout`, `tls`, ...), if it did.
    pub error_class: Option<String>,
}

/// One entry of an instance's chain, as `GET /v1/instances/{name}/ledger` exports it (one
/// JSON object per line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerEntry {
    /// 1 for the instance's first entry, then without gaps.
    pub seq: u64,
    #[serde(flatten)]
    pub facts: LedgerFacts,
    /// The previous entry's hash (hex; 64 zeros before seq 1).
    pub prev_hash: String,
    /// `SHA-256(prev_hash || canonical bytes)`, in hex.
    pub hash: String,
}

impl LedgerFacts {
    /// The bytes this entry's hash covers after `prev_hash` (see the module's docs).
    pub fn canonical(&self, seq: u64) -> Vec<u8> {
        let status = self.status.map(|status| status.to_string()).unwrap_or_default();
        let fields: [&str; 11] = [
            CANONICAL_TAG,
            &self.instance,
            &seq.to_string(),
            &self.attempt_id,
            &self.message_id,
            &self.body_sha256,
            &self.endpoint_url,
            &self.attempt.to_string(),
            &self.attempted_at,
            &status,
            self.error_class.as_deref().unwrap_or_default(),
        ];
        let mut out = Vec::with_capacity(fields.iter().map(|field| field.len() + 8).sum());
        for field in fields {
            out.extend_from_slice(field.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(field.as_bytes());
            out.push(b',');
        }
        out
    }

    /// This attempt as entry `seq` of a chain whose last hash is `prev`.
    pub fn chain(self, seq: u64, prev: &[u8; 32]) -> LedgerEntry {
        let hash = entry_hash(prev, &self.canonical(seq));
        LedgerEntry { seq, facts: self, prev_hash: hex(prev), hash: hex(&hash) }
    }
}

/// `SHA-256(prev || canonical)`.
pub fn entry_hash(prev: &[u8; 32], canonical: &[u8]) -> [u8; 32] {
    let mut digest = Sha256::new();
    digest.update(prev);
    digest.update(canonical);
    digest.finalize().into()
}

/// A 64-digit hex hash as its 32 bytes.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// What a whole chain that verified covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    pub instance: String,
    pub entries: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The `prev_hash` the chain starts from: [`GENESIS`] when it starts at seq 1.
    pub anchor: String,
    /// The last entry's hash: the chain head to compare with one written down.
    pub head: String,
}

/// The first link of a chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}: {problem}", .seq.map(|seq| format!(" (seq {seq})")).unwrap_or_default())]
pub struct BrokenLink {
    /// 1-based line of the export.
    pub line: usize,
    pub seq: Option<u64>,
    pub problem: Problem,
}

/// Why a link does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("not a ledger entry: {0}")]
    Unreadable(String),
    #[error("the chain is empty")]
    Empty,
    #[error("the entry belongs to instance {found:?}, the chain to {expected:?}")]
    OtherInstance { expected: String, found: String },
    #[error("seq 1 must follow the genesis hash (64 zeros), not {0}")]
    NotFromGenesis(String),
    #[error("prev_hash or hash is not 64 hex digits")]
    BadHash,
    #[error("seq {found} follows seq {previous}: entries are missing, repeated or reordered")]
    OutOfSequence { previous: u64, found: u64 },
    #[error("prev_hash is not the hash of the entry before it (seq {previous})")]
    Unlinked { previous: u64 },
    #[error("the hash does not match the entry's contents: it was changed after it was chained")]
    Altered,
    #[error("the chain ends at {found}, not at the expected head {expected}")]
    OtherHead { expected: String, found: String },
}

/// Checks a chain line by line: each line parses, belongs to the first line's instance,
/// follows the line before it (seq + 1, `prev_hash` equal to its hash) and hashes to its
/// `hash`. With `expected_head`, the last hash must be it. Blank lines are skipped.
pub fn verify_lines<S: AsRef<str>>(
    lines: impl IntoIterator<Item = S>,
    expected_head: Option<&str>,
) -> Result<ChainSummary, BrokenLink> {
    let mut verifier = ChainVerifier::default();
    for line in lines {
        verifier.push(line.as_ref())?;
    }
    verifier.finish(expected_head)
}

/// [`verify_lines`] a line at a time, for a chain read from a file of any length.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    summary: Option<ChainSummary>,
    line: usize,
}

impl ChainVerifier {
    /// Checks the next line against the ones before it.
    pub fn push(&mut self, line: &str) -> Result<(), BrokenLink> {
        self.line += 1;
        if line.trim().is_empty() {
            return Ok(());
        }
        let line_number = self.line;
        let broken = |seq, problem| BrokenLink { line: line_number, seq, problem };
        let entry: LedgerEntry =
            serde_json::from_str(line).map_err(|error| broken(None, Problem::Unreadable(error.to_string())))?;
        let seq = Some(entry.seq);
        let (Some(prev), Some(hash)) = (parse_hash(&entry.prev_hash), parse_hash(&entry.hash)) else {
            return Err(broken(seq, Problem::BadHash));
        };
        match &self.summary {
            None => {
                if entry.seq == 1 && prev != GENESIS {
                    return Err(broken(seq, Problem::NotFromGenesis(entry.prev_hash)));
                }
            }
            Some(chain) => {
                if entry.facts.instance != chain.instance {
                    let found = entry.facts.instance.clone();
                    return Err(broken(seq, Problem::OtherInstance { expected: chain.instance.clone(), found }));
                }
                if chain.last_seq.checked_add(1) != Some(entry.seq) {
                    return Err(broken(seq, Problem::OutOfSequence { previous: chain.last_seq, found: entry.seq }));
                }
                if entry.prev_hash != chain.head {
                    return Err(broken(seq, Problem::Unlinked { previous: chain.last_seq }));
                }
            }
        }
        if entry_hash(&prev, &entry.facts.canonical(entry.seq)) != hash {
            return Err(broken(seq, Problem::Altered));
        }
        let chain = self.summary.get_or_insert_with(|| ChainSummary {
            instance: entry.facts.instance.clone(),
            entries: 0,
            first_seq: entry.seq,
            last_seq: entry.seq,
            anchor: entry.prev_hash.clone(),
            head: String::new(),
        });
        chain.entries += 1;
        chain.last_seq = entry.seq;
        chain.head = entry.hash;
        Ok(())
    }

    /// What the chain pushed so far covers; with `expected_head`, its last hash must be it.
    pub fn finish(self, expected_head: Option<&str>) -> Result<ChainSummary, BrokenLink> {
        let last_line = self.line.max(1);
        let summary = self.summary.ok_or(BrokenLink { line: last_line, seq: None, problem: Problem::Empty })?;
        if let Some(expected) = expected_head {
            if !expected.trim().eq_ignore_ascii_case(&summary.head) {
                return Err(BrokenLink {
                    line: last_line,
                    seq: Some(summary.last_seq),
                    problem: Problem::OtherHead { expected: expected.to_string(), found: summary.head },
                });
            }
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(n: u32) -> LedgerFacts {
        LedgerFacts {
            instance: "acme".into(),
            attempt_id: format!("att_{n:026}"),
            message_id: format!("msg_{n:026}"),
            body_sha256: hex(&Sha256::digest(n.to_string())),
            endpoint_url: "https://hooks.example.com/flinks".into(),
            attempt: 1 + n % 3,
            attempted_at: format!("2026-11-29T14:02:{:02}.123Z", n % 60),
            status: n.is_multiple_of(2).then_some(200),
            error_class: (!n.is_multiple_of(2)).then(|| "timeout".to_string()),
        }
    }

    /// A chain of `len` entries from genesis, one JSON line each.
    fn chain(len: u32) -> Vec<String> {
        let mut prev = GENESIS;
        (1..=len)
            .map(|n| {
                let entry = facts(n).chain(u64::from(n), &prev);
                prev = parse_hash(&entry.hash).expect("hash");
                serde_json::to_string(&entry).expect("json")
            })
            .collect()
    }

    fn verify(lines: &[String]) -> Result<ChainSummary, BrokenLink> {
        verify_lines(lines, None)
    }

    #[test]
    fn the_canonical_bytes_are_netstrings_in_a_fixed_order() {
        let mut one = facts(2);
        one.endpoint_url = "https://h.example/x".into();
        let text = String::from_utf8(one.canonical(7)).expect("utf-8");
        assert_eq!(
            text,
            format!(
                "17:finhook-ledger-v1,4:acme,1:7,30:att_00000000000000000000000002,30:msg_00000000000000000000000002,\
                 64:{},19:https://h.example/x,1:3,24:2026-11-29T14:02:02.123Z,3:200,0:,",
                one.body_sha256
            )
        );
        // A field's bytes cannot pass for the next field's: the lengths differ.
        let mut shifted = one.clone();
        shifted.endpoint_url.push(',');
        assert_ne!(shifted.canonical(7), one.canonical(7));
    }

    /// The hash of seq 1, computed here from the definition with nothing but SHA-256, so
    /// the encoding cannot drift without this test noticing.
    #[test]
    fn an_entry_hash_is_sha256_of_the_previous_hash_and_the_canonical_bytes() {
        let entry = facts(2).chain(1, &GENESIS);
        let mut input = vec![0u8; 32];
        input.extend_from_slice(&facts(2).canonical(1));
        assert_eq!(entry.hash, hex(&Sha256::digest(&input)));
        assert_eq!(entry.prev_hash, "0".repeat(64));
    }

    #[test]
    fn a_whole_chain_verifies_and_names_its_head() {
        let lines = chain(5);
        let summary = verify(&lines).expect("verifies");
        let last: LedgerEntry = serde_json::from_str(&lines[4]).expect("json");
        assert_eq!((summary.entries, summary.first_seq, summary.last_seq), (5, 1, 5));
        assert_eq!(summary.head, last.hash);
        assert_eq!(summary.anchor, "0".repeat(64));
        assert!(verify_lines(&lines, Some(&last.hash.to_uppercase())).is_ok());
        let other = verify_lines(&lines, Some(&"ab".repeat(32))).expect_err("other head");
        assert!(matches!(other.problem, Problem::OtherHead { .. }), "{other}");
    }

    #[test]
    fn a_chain_exported_from_the_middle_verifies_from_its_anchor() {
        let lines = chain(6);
        let summary = verify(&lines[2..]).expect("verifies");
        assert_eq!((summary.first_seq, summary.last_seq, summary.entries), (3, 6, 4));
        let second: LedgerEntry = serde_json::from_str(&lines[1]).expect("json");
        assert_eq!(summary.anchor, second.hash);
    }

    #[test]
    fn a_changed_entry_is_caught_at_its_line() {
        let mut lines = chain(5);
        let changed = lines[2].replace("\"attempt\":1,", "\"attempt\":2,");
        assert_ne!(changed, lines[2]);
        lines[2] = changed;
        let broken = verify(&lines).expect_err("changed");
        assert_eq!((broken.line, broken.seq, &broken.problem), (3, Some(3), &Problem::Altered));
        assert_eq!(
            broken.to_string(),
            "line 3 (seq 3): the hash does not match the entry's contents: it was changed after it was chained"
        );
    }

    #[test]
    fn a_changed_entry_with_its_hash_recomputed_breaks_the_next_link() {
        let mut lines = chain(5);
        let mut entry: LedgerEntry = serde_json::from_str(&lines[2]).expect("json");
        entry.facts.endpoint_url = "https://elsewhere.example/".into();
        let prev = parse_hash(&entry.prev_hash).expect("hash");
        lines[2] = serde_json::to_string(&entry.facts.clone().chain(3, &prev)).expect("json");
        let broken = verify(&lines).expect_err("relinked");
        assert_eq!((broken.line, broken.problem), (4, Problem::Unlinked { previous: 3 }));
    }

    #[test]
    fn a_removed_entry_is_caught_where_the_gap_is() {
        let mut lines = chain(5);
        lines.remove(3);
        let broken = verify(&lines).expect_err("removed");
        assert_eq!((broken.line, broken.problem), (4, Problem::OutOfSequence { previous: 3, found: 5 }));
    }

    #[test]
    fn reordered_entries_are_caught() {
        let mut lines = chain(5);
        lines.swap(1, 2);
        let broken = verify(&lines).expect_err("reordered");
        assert_eq!((broken.line, broken.problem), (2, Problem::OutOfSequence { previous: 1, found: 3 }));
    }

    #[test]
    fn a_first_entry_not_on_genesis_is_caught() {
        let mut lines = chain(2);
        let mut first: LedgerEntry = serde_json::from_str(&lines[0]).expect("json");
        first = first.facts.chain(1, &[7; 32]);
        lines[0] = serde_json::to_string(&first).expect("json");
        let broken = verify(&lines).expect_err("not from genesis");
        assert!(matches!(broken.problem, Problem::NotFromGenesis(_)), "{broken}");
    }

    #[test]
    fn unreadable_lines_other_instances_and_empty_files_are_named() {
        let mut lines = chain(3);
        lines[1] = "{\"seq\": 2}".into();
        let broken = verify(&lines).expect_err("unreadable");
        assert_eq!(broken.line, 2);
        assert!(matches!(broken.problem, Problem::Unreadable(_)), "{broken}");

        let mut other = chain(3);
        let mut entry: LedgerEntry = serde_json::from_str(&other[2]).expect("json");
        entry.facts.instance = "globex".into();
        other[2] = serde_json::to_string(&entry).expect("json");
        let broken = verify(&other).expect_err("other instance");
        assert!(matches!(broken.problem, Problem::OtherInstance { .. }), "{broken}");

        let broken = verify_lines(["", "  "], None).expect_err("empty");
        assert_eq!(broken.problem, Problem::Empty);
    }
}
