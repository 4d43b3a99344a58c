//! Rows the store's own tests write: shared so each test says only what differs.

use chrono::Utc;
use finhook_core::ids::{AttemptId, DeliveryId, EndpointId, MessageId};

use crate::store::{AttemptRecord, AttemptResult, DeliveryStatus, InstanceId, LedgerSource};

/// A first attempt of `delivery_id`, answered `200`: the delivery is delivered.
pub(super) fn delivered(delivery_id: DeliveryId, instance_id: InstanceId) -> AttemptResult {
    AttemptResult {
        delivery_id,
        endpoint_id: EndpointId::generate(),
        ledger: LedgerSource {
            instance_id,
            message_id: MessageId::generate(),
            body_sha256: "0".repeat(64),
            endpoint_url: "https://hooks.example.com/".into(),
        },
        attempt: AttemptRecord {
            id: AttemptId::generate(),
            attempt_number: 1,
            started_at: Utc::now(),
            latency_ms: 1,
            status_code: Some(200),
            error_class: None,
            error_detail: None,
            response_excerpt: None,
            response_bytes: None,
            succeeded: true,
        },
        next_attempt_at: None,
        new_status: DeliveryStatus::Delivered,
    }
}
