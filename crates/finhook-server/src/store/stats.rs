//! The counts the store gives the metrics endpoint and the dashboard's overview.

use chrono::{DateTime, Utc};
use finhook_core::ids::EndpointId;

use super::{ledger, DeliveryStatus};

/// Counts for the metrics endpoint.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    pub messages: i64,
    pub deliveries_by_status: Vec<(DeliveryStatus, i64)>,
    /// The due time of the most overdue pending delivery of an enabled endpoint.
    pub oldest_due_at: Option<DateTime<Utc>>,
    /// Every instance's ledger chain head.
    pub ledger_heads: Vec<ledger::LedgerHead>,
    /// Endpoints whose attempts failed since their last success: instance, endpoint, how
    /// many in a row.
    pub failing_endpoints: Vec<(String, EndpointId, u64)>,
    /// Operational events waiting in the outbox.
    pub events_queued: u64,
    /// Per endpoint with deliveries pending: instance, endpoint, how many, and when the
    /// most overdue fell due (`None` when none is due yet).
    pub endpoint_backlogs: Vec<(String, EndpointId, u64, Option<DateTime<Utc>>)>,
    /// Recorded attempts not yet chained into the ledger.
    pub ledger_queued: u64,
    /// Each enabled endpoint's server certificate expiry (as last seen): instance name,
    /// endpoint id, expiry.
    pub certificate_expiries: Vec<(String, EndpointId, DateTime<Utc>)>,
    /// The same for each enabled endpoint's own client certificate (mutual TLS).
    pub client_certificate_expiries: Vec<(String, EndpointId, DateTime<Utc>)>,
    /// The disk space of the embedded store's payload log (0 without one).
    pub payload_log_bytes: u64,
    /// This process's group commit since it started (not the other nodes').
    pub group_commit: GroupCommitTotals,
}

/// What one process's group-commit writer has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GroupCommitTotals {
    /// Batches applied (a batch tried again on a fresh connection counts again).
    pub batches: u64,
    /// Writes in them: ingests, attempt records, probes.
    pub writes: u64,
    /// Time the writer spent applying batches and answering their callers.
    pub busy_seconds: f64,
    /// The part of it spent in `COMMIT` (the fsync).
    pub commit_seconds: f64,
}
