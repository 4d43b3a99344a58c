//! Bulk recovery in the store: a job re-sends the failed deliveries of an instance (or of
//! one of its endpoints) that failed in a time range, a batch per transaction, each a new
//! delivery round as a redelivery makes (the failed one superseded). The job's progress is
//! in `recoveries`; a batch takes only deliveries still failed and not superseded, so a job
//! run twice at once, or resumed after a crash, re-sends each delivery once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{EndpointId, RecoveryId};

use super::{InstanceId, StoreResult};

/// How many deliveries one recovery transaction re-sends at most.
pub const RECOVER_BATCH: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecoveryStatus {
    Running,
    Done,
    Failed,
}

impl RecoveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Running, Self::Done, Self::Failed].into_iter().find(|status| status.as_str() == text)
    }
}

/// A recovery job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub id: RecoveryId,
    pub instance_id: InstanceId,
    pub endpoint_id: Option<EndpointId>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub status: RecoveryStatus,
    /// Failed deliveries in the range when the job began.
    pub total: u64,
    pub resent: u64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Recovery persistence, a part of every [`super::Store`].
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Records a new job over the deliveries of `instance` (of `endpoint` only, if given)
    /// that failed at or after `since` and at or before `until`, counting them.
    async fn start_recovery(
        &self,
        instance: InstanceId,
        endpoint: Option<&EndpointId>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Recovery>;
    /// Re-sends up to [`RECOVER_BATCH`] of the job's deliveries still failed, in one
    /// transaction with the job's progress; how many (0: none is left).
    async fn recover_batch(&self, id: &RecoveryId, now: DateTime<Utc>) -> StoreResult<usize>;
    /// Ends the job: `Done`, or `Failed` with why.
    async fn finish_recovery(&self, id: &RecoveryId, error: Option<&str>, now: DateTime<Utc>) -> StoreResult<()>;
    async fn recovery(&self, instance: InstanceId, id: &RecoveryId) -> StoreResult<Option<Recovery>>;
    /// Jobs still running (interrupted by a stop, to resume).
    async fn running_recoveries(&self) -> StoreResult<Vec<RecoveryId>>;
}
