//! Operational events in the store: each endpoint's run of failed attempts, and the outbox
//! that events wait in until they are published as messages.
//!
//! - **Failure runs.** The group commit that records attempts also keeps, per endpoint, the
//!   run of failed attempts since its last success (`endpoint_failures`: one row per
//!   failing endpoint, none for a healthy one), in the same transaction: a success deletes
//!   the row, a failure adds to it. So the count is exact whichever node made the
//!   attempts, and survives restarts.
//! - **The outbox.** Whatever notices an event (that group commit for `endpoint.recovered`
//!   and `message.attempts_exhausted`; the events pass for `endpoint.failing` and
//!   `endpoint.disabled`; the certificate watch for `certificate.expiring`) writes it to
//!   `event_outbox` in the transaction that changes the state it reports. Publishing turns
//!   each into a message of its instance (and of the operators' instance) in one
//!   transaction with its removal from the outbox, under an idempotency key named after
//!   the occurrence: an event is published once, even by two nodes at once or when the
//!   same expiry is seen on two days.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::events::EventType;
use finhook_core::ids::{EndpointId, MessageId};

use super::{ErrorClass, InstanceId, ScheduledDelivery, StoreResult};

/// How many outbox events one publishing transaction takes at most.
pub const PUBLISH_BATCH: usize = 100;

/// An event to queue in the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The instance the event is about (its endpoint's, its message's).
    pub instance_id: InstanceId,
    pub event_type: EventType,
    /// Names the occurrence, so that seeing it twice publishes it once (e.g.
    /// `certificate.expiring/ep_.../server/1767225600000`).
    pub key: String,
    pub endpoint_id: Option<EndpointId>,
    pub message_id: Option<MessageId>,
    pub at: DateTime<Utc>,
    pub data: serde_json::Value,
}

/// An event published as a message; its deliveries are for the worker.
#[derive(Debug, Clone)]
pub struct Published {
    pub event_type: EventType,
    pub message_id: MessageId,
    pub payload: bytes::Bytes,
    /// The hex SHA-256 of `payload`, as stored with the message.
    pub body_sha256: String,
    pub deliveries: Vec<ScheduledDelivery>,
}

/// An endpoint whose attempts have failed since its last success.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Failing {
    /// When the first failed attempt of the run was made.
    pub since: DateTime<Utc>,
    pub failed_attempts_in_row: u64,
    /// When the last one was made.
    pub last_failed_at: DateTime<Utc>,
    pub last_status_code: Option<u16>,
    pub last_error_class: Option<ErrorClass>,
}

/// Operational-event persistence, a part of every [`super::Store`].
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Queues one event in the outbox.
    async fn queue_event(&self, event: NewEvent) -> StoreResult<()>;
    /// Queues `endpoint.failing` for every endpoint whose run of failed attempts reached
    /// `after` and was not reported yet; how many.
    async fn report_failing(&self, after: u32) -> StoreResult<usize>;
    /// Disables every enabled endpoint whose attempts have all failed since `failing_since`
    /// or earlier (its deliveries wait, pending), and queues `endpoint.disabled`; which.
    async fn disable_failing(&self, failing_since: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<Vec<EndpointId>>;
    /// Publishes up to [`PUBLISH_BATCH`] queued events as messages of their instance and,
    /// when `operators` names another, of that one too; to instances where no endpoint
    /// takes the type, nothing is stored. Returns how many events it took from the outbox,
    /// and the messages it stored.
    async fn publish_events(
        &self,
        operators: Option<InstanceId>,
        now: DateTime<Utc>,
    ) -> StoreResult<(usize, Vec<Published>)>;
    /// How many events wait in the outbox.
    async fn events_queued(&self) -> StoreResult<u64>;
    /// The failing endpoints of `instance` (of every instance when `None`).
    async fn failing_endpoints(&self, instance: Option<InstanceId>) -> StoreResult<Vec<(EndpointId, Failing)>>;
}

impl NewEvent {
    /// An event about an endpoint's run of failed attempts: `endpoint.failing` (the run
    /// reached the threshold), `endpoint.recovered` (an attempt succeeded after it was
    /// reported) or `endpoint.disabled` (it lasted too long). Named after the run, so each
    /// is told once per run.
    pub fn of_run(
        event_type: EventType,
        instance_id: InstanceId,
        endpoint: &EndpointId,
        failing: &Failing,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            instance_id,
            event_type,
            key: format!("{event_type}/{endpoint}/{}", failing.since.timestamp_millis()),
            endpoint_id: Some(endpoint.clone()),
            message_id: None,
            at,
            data: serde_json::json!({
                "failing_since": failing.since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "failed_attempts_in_row": failing.failed_attempts_in_row,
                "last_status_code": failing.last_status_code,
                "last_error_class": failing.last_error_class.map(ErrorClass::as_str),
            }),
        }
    }

    /// `message.attempts_exhausted`: a delivery failed its last attempt.
    pub fn exhausted(result: &super::AttemptResult) -> Self {
        let attempt = &result.attempt;
        Self {
            instance_id: result.ledger.instance_id,
            event_type: EventType::MessageAttemptsExhausted,
            key: format!("message.attempts_exhausted/{}", result.delivery_id),
            endpoint_id: Some(result.endpoint_id.clone()),
            message_id: Some(result.ledger.message_id.clone()),
            at: attempt.started_at,
            data: serde_json::json!({
                "delivery_id": result.delivery_id.as_str(),
                "attempts": attempt.attempt_number,
                "last_status_code": attempt.status_code,
                "last_error_class": attempt.error_class.map(ErrorClass::as_str),
            }),
        }
    }

    /// `certificate.expiring`: the endpoint's server certificate (`which`: `server`) or its
    /// own client certificate (`client`) expires within the watch's warning period.
    pub fn certificate_expiring(
        instance_id: InstanceId,
        endpoint: &EndpointId,
        which: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            instance_id,
            event_type: EventType::CertificateExpiring,
            key: format!("certificate.expiring/{endpoint}/{which}/{}", expires_at.timestamp_millis()),
            endpoint_id: Some(endpoint.clone()),
            message_id: None,
            at: now,
            data: serde_json::json!({
                "certificate": which,
                "expires_at": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "days_left": (expires_at - now).num_days(),
            }),
        }
    }
}
