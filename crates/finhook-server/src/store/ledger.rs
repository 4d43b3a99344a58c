//! The delivery ledger in the store: every recorded attempt becomes a numbered, hash-linked
//! entry of its instance's chain, and is read back for export.
//!
//! An attempt enters the ledger in the group commit that records it, in the same
//! transaction: an attempt is never durable without its entry. Chaining needs each
//! instance's last link (`ledger_heads`), and on a shared PostgreSQL store several nodes
//! record attempts at once, so only the transaction that holds the chains extends them: on
//! SQLite, the one writer always does; on PostgreSQL, the transaction that takes a
//! transaction-scoped advisory lock without waiting. A PostgreSQL batch that does not get
//! it never waits: it queues its attempts with every fact of their entries
//! (`ledger_pending`), and whichever node holds the chains next (a later batch, the
//! sealer that runs every second, an export) chains the queue. The chain's order is
//! therefore the order in which attempts were chained: on SQLite the commit order; on
//! PostgreSQL, nearly so, with queued attempts following the ones chained before them
//! (so entries' times are not strictly increasing). What the chain proves does not depend
//! on that order: every attempt is in it once, and no entry can be changed, removed or
//! moved without breaking every later link.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ledger::LedgerEntry;

use super::{InstanceId, StoreResult};

/// How many queued attempts one sealing transaction chains at most.
pub const SEAL_BATCH: usize = 500;

/// An instance's chain as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerHead {
    pub instance_id: InstanceId,
    pub instance: String,
    /// The last entry's seq: how many entries the chain has.
    pub seq: u64,
    /// The last entry's hash.
    pub hash: String,
}

/// Ledger persistence, a part of every [`super::Store`].
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Chains up to [`SEAL_BATCH`] queued attempts, oldest first, in one transaction; how
    /// many. 0 when none is queued, or when another node is sealing right now.
    async fn seal_ledger(&self) -> StoreResult<usize>;
    /// How many recorded attempts wait to be chained.
    async fn ledger_queued(&self) -> StoreResult<u64>;
    /// `instance`'s entries after seq `after`, oldest first, at most `limit`.
    async fn ledger_entries(&self, instance: InstanceId, after: u64, limit: usize) -> StoreResult<Vec<LedgerEntry>>;
    /// The seq of `instance`'s first entry (in chain order) of an attempt made at or after
    /// `since`, if any.
    async fn ledger_first_since(&self, instance: InstanceId, since: DateTime<Utc>) -> StoreResult<Option<u64>>;
    /// The chain head of `instance`, if it has entries.
    async fn ledger_head(&self, instance: InstanceId) -> StoreResult<Option<LedgerHead>>;
    /// Every instance's chain head.
    async fn ledger_heads(&self) -> StoreResult<Vec<LedgerHead>>;
}
