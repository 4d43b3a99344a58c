//! The audit log in the store: one row per operator or API action (never per callback:
//! those are the messages themselves).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{InstanceId, StoreResult};

/// One action to record.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    /// `admin` or `instance:<name>`, with ` (dashboard)` for an action made there.
    pub actor: String,
    /// The instance acted on, if any.
    pub instance_id: Option<InstanceId>,
    /// What was done, e.g. `endpoint.create`.
    pub action: &'static str,
    /// What it was done to (an endpoint's id, a message's, an instance's name).
    pub target: Option<String>,
    pub remote_addr: Option<String>,
    pub request_id: Option<String>,
}

/// One recorded action, as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Increasing; page with `before`.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// The instance acted on (its name), if any.
    pub instance: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub remote_addr: Option<String>,
    pub request_id: Option<String>,
}

/// Audit persistence, a part of every [`super::Store`].
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()>;
    /// Newest first: of `instance` (every entry when `None`), older than the entry `before`.
    async fn audit_entries(
        &self,
        instance: Option<InstanceId>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>>;
    /// Deletes the entries from before `cutoff`; how many.
    async fn purge_audit_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
}
