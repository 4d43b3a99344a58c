//! The delivery queue: how the worker finds due deliveries, takes them, and hands back
//! their outcomes. A part of every [`super::Store`].
//!
//! The worker keeps its queues in memory (see `crate::delivery::dispatch`); the store is
//! the durable record it pages work in from. Every read here is bounded by the worker's
//! room, never by the size of the backlog.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};

use super::{AttemptResult, DispatchEndpoint, StoreResult, TakenDue};

/// How long a node of a shared store may go without saying it is alive before its leases
/// are free for the others ([`DeliveryQueue::heartbeat`]).
pub const NODE_SILENT_AFTER: chrono::Duration = chrono::Duration::seconds(5);

/// How often a node says it is alive: several times within [`NODE_SILENT_AFTER`].
pub const HEARTBEAT_EVERY: chrono::Duration = chrono::Duration::seconds(1);

/// A node that has not managed to say it is alive for this long starts no attempt on a
/// lease: the others may take its leases from [`NODE_SILENT_AFTER`] on, and the margin
/// keeps two live nodes from attempting the same delivery.
pub const STOP_STARTING_AFTER: chrono::Duration = chrono::Duration::seconds(3);

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Whether a claim is a lease other processes respect until it runs out (a shared
    /// store), rather than a promise kept in this process alone (the embedded store,
    /// whose lock file keeps every other process away).
    fn claims_are_leases(&self) -> bool;
    /// From now on, on a shared store, deliveries that ingest writes through this store
    /// are leased to this node for `lease` from the time of the ingest, in the ingest's
    /// own statement, so that the worker they are handed to needs no claim (a transaction
    /// and a commit of its own per hand-off). The worker releases those it does not take.
    /// Nothing to do where claims are not leases.
    fn lease_new_deliveries(&self, lease: chrono::Duration) {
        let _ = lease;
    }
    /// Goes up whenever an endpoint is created, changed or deleted through this store, so
    /// the worker knows its copies are stale.
    fn endpoints_version(&self) -> u64;
    /// Every enabled endpoint, of every instance.
    async fn enabled_endpoints(&self) -> StoreResult<Vec<EndpointId>>;
    /// How many deliveries are pending (due or waiting for their time), of every endpoint.
    async fn pending_deliveries(&self) -> StoreResult<u64>;
    /// One endpoint as the worker needs it, with the secrets still valid at `now`;
    /// `None` if it no longer exists.
    async fn dispatch_endpoint(&self, id: &EndpointId, now: DateTime<Utc>) -> StoreResult<Option<DispatchEndpoint>>;
    /// Takes up to `take` deliveries of `endpoint` that are due at `now`, most overdue
    /// first. On a shared store they are claimed until `claim_until`, and deliveries
    /// claimed by anyone are skipped. The embedded store writes nothing: it returns up to
    /// `take + held` due deliveries, and the caller skips the `held` it already has. For an
    /// `ordered` endpoint (`ordering = login_id`), only the first pending delivery of each
    /// LoginId is a candidate.
    async fn take_due(
        &self,
        endpoint: &EndpointId,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        take: u32,
        held: u32,
        ordered: bool,
    ) -> StoreResult<TakenDue>;
    /// Claims deliveries that ingest handed straight to this process, until
    /// `claim_until`; returns those it got (on a shared store, another node may have
    /// taken some first; the embedded store grants every one still pending).
    async fn claim(
        &self,
        ids: &[DeliveryId],
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<DeliveryId>>;
    /// The stored bytes of these messages (those that still exist), each checked against
    /// the SHA-256 stored with it; one that does not match is left out (and logged).
    async fn payloads(&self, ids: &[MessageId]) -> StoreResult<Vec<(MessageId, CheckedPayload)>>;
    /// Records a finished attempt, releases the claim and schedules what comes next.
    async fn record_attempt(&self, result: AttemptResult) -> StoreResult<()>;
    /// Says that this node is alive at `now` (a shared store; nothing to do elsewhere).
    async fn heartbeat(&self, now: DateTime<Utc>) -> StoreResult<()>;
    /// Gives up this process's claims on `ids` (pending deliveries it holds but will not
    /// attempt, at shutdown), so that other nodes take them at once rather than when the
    /// lease runs out. Nothing to do where claims are not leases.
    async fn release(&self, ids: &[DeliveryId]) -> StoreResult<()>;
}

/// A message's stored body, checked: `sha256` (hex) is the hash stored with the message
/// and that of `bytes`.
#[derive(Debug, Clone)]
pub struct CheckedPayload {
    pub bytes: Bytes,
    pub sha256: String,
}
