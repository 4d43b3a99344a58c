//! One endpoint's activity in the store, for the operator looking at it: its newest
//! deliveries with their last attempt, and a test callback stored for it alone.

use async_trait::async_trait;
use finhook_core::events::MessageType;
use finhook_core::ids::{EndpointId, MessageId};

use super::{DeliveryRecord, IngestOutcome, InstanceId, NewMessage, StoreResult};

/// The most deliveries [`ActivityStore::recent_deliveries`] returns.
pub const MAX_RECENT: u32 = 100;

/// One delivery to the endpoint, with the message it carries. `delivery.attempts` holds
/// only its last attempt (none before the first).
#[derive(Debug, Clone)]
pub struct RecentDelivery {
    pub message_id: MessageId,
    pub response_type: MessageType,
    pub delivery: DeliveryRecord,
}

/// Endpoint activity, a part of every [`super::Store`].
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// The newest deliveries to `endpoint` (of `instance`), newest first: at most `limit`
    /// (capped at one more than [`MAX_RECENT`], so a page of the most can tell whether
    /// another follows), and only older than `before` when it is given. An index
    /// walk: as cheap for an endpoint with millions of deliveries as for one with ten.
    async fn recent_deliveries(
        &self,
        instance: InstanceId,
        endpoint: &EndpointId,
        before: Option<&finhook_core::ids::DeliveryId>,
        limit: u32,
    ) -> StoreResult<Vec<RecentDelivery>>;

    /// Stores `message` with one delivery, to `endpoint` alone, whatever the endpoint
    /// subscribes to (a test callback); `None`, storing nothing, when the endpoint is not
    /// one of `message.instance_id`'s.
    async fn ingest_to(&self, message: NewMessage, endpoint: &EndpointId) -> StoreResult<Option<IngestOutcome>>;
}
