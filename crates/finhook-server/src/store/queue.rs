//! The delivery queue: how workers take due deliveries and hand back their outcomes.
//! A part of every [`super::Store`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AttemptResult, ClaimedDelivery, StoreResult};

#[async_trait]
pub trait DeliveryQueue: Send + Sync {
    /// Claims up to `limit` due deliveries until `claim_until`, leaving any endpoint with
    /// at most `per_endpoint` claims in flight.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
        per_endpoint: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records a finished attempt, releases the claim and schedules what comes next.
    async fn record_attempt(&self, result: AttemptResult) -> StoreResult<()>;
    /// When the earliest pending delivery falls due, if any.
    async fn next_due_at(&self) -> StoreResult<Option<DateTime<Utc>>>;
}
