//! One endpoint's activity in the store, for the operator looking at it: its deliveries
//! of the instance's newest messages, with their last attempt, and a test callback stored
//! for it alone.
//!
//! There is no index by endpoint to walk: one on `deliveries (endpoint_id, id)` cost 14 to
//! 19 % of the deliveries per second over 100 endpoints (each commit dirtied a leaf page per
//! endpoint it touched; docs/BENCHMARKS.md). Instead a page walks a window of the instance's
//! newest messages (`messages_by_instance`) and their deliveries (`deliveries_by_message`):
//! bounded work per page, nothing added to the hot path.

use async_trait::async_trait;
use finhook_core::events::MessageType;
use finhook_core::ids::{EndpointId, MessageId};

use super::{DeliveryRecord, IngestOutcome, InstanceId, NewMessage, StoreResult};

/// The most deliveries a page holds.
pub const MAX_RECENT: u32 = 100;

/// How many of the instance's messages one page looks at, at most.
pub const WINDOW: u32 = 1_000;

/// One delivery to the endpoint, with the message it carries. `delivery.attempts` holds
/// only its last attempt (none before the first).
#[derive(Debug, Clone)]
pub struct RecentDelivery {
    pub message_id: MessageId,
    pub response_type: MessageType,
    pub delivery: DeliveryRecord,
}

/// A page of an endpoint's deliveries.
#[derive(Debug, Clone, Default)]
pub struct RecentPage {
    /// Newest message first; a message's deliveries (a redelivery makes more) newest first,
    /// never split between pages.
    pub deliveries: Vec<RecentDelivery>,
    /// Where the next page starts (pass it as `before`), `None` when no older message is
    /// left. A page may be short, even empty, and still have one: it looked at
    /// [`WINDOW`] messages and this endpoint had no more deliveries among them.
    pub next: Option<MessageId>,
}

/// Endpoint activity, a part of every [`super::Store`].
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// `endpoint`'s deliveries of `instance`'s messages older than `before` (all, when
    /// `None`), newest message first: at most `limit` deliveries (capped at
    /// [`MAX_RECENT`]), looking at [`WINDOW`] messages at most.
    async fn recent_deliveries(
        &self,
        instance: InstanceId,
        endpoint: &EndpointId,
        before: Option<&MessageId>,
        limit: u32,
    ) -> StoreResult<RecentPage>;

    /// Stores `message` with one delivery, to `endpoint` alone, whatever the endpoint
    /// subscribes to (a test callback); `None`, storing nothing, when the endpoint is not
    /// one of `message.instance_id`'s.
    async fn ingest_to(&self, message: NewMessage, endpoint: &EndpointId) -> StoreResult<Option<IngestOutcome>>;
}
