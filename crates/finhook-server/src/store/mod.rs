//! The store: the one narrow interface between finhook and its database.
//!
//! Everything durable goes through [`Store`]: instances, endpoints and their secrets,
//! messages (the exact ingested bytes, stored once), deliveries (one per message and
//! endpoint) and attempts. Its one implementation is [`sql::SqlStore`], on an embedded
//! SQLite file or on a PostgreSQL database shared by several nodes; every query is written
//! once, and the few places where the databases differ are named in [`sql`].
//!
//! Invariants every implementation keeps:
//! - `ingest` is one transaction: the message and all its deliveries, or nothing.
//! - `take_due`, `claim` and `record_attempt` are short transactions; no transaction is
//!   ever open while a webhook is being sent.
//! - On a shared store a claim is a lease that expires; an unrecorded attempt (a crash
//!   mid-send) is simply made again.
//! - Every query that takes an `InstanceId` only sees that instance's rows.
//! - Every recorded attempt enters the ledger in the same transaction (chained, or queued
//!   for chaining while another PostgreSQL node holds the chains); a ledger entry is never
//!   changed or deleted (retention does not touch them).

pub mod activity;
pub mod audit;
pub mod certificate;
pub mod db;
mod error;
pub mod events;
pub mod feed;
pub mod health;
pub mod identity;
pub mod ledger;
mod ordering;
pub mod portal;
pub mod queue;
pub mod recovery;
mod rows;
pub mod sandbox;
pub mod signing;
pub mod sql;
mod stats;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::events::MessageType;
use finhook_core::ids::{AttemptId, DeliveryId, EndpointId, MessageId};
use finhook_core::retry::RetryPolicy;
use finhook_core::secret::{EndpointSecret, KeyHash};
use finhook_core::signing::asymmetric::SigningKey;
pub use signing::{ClientCertificateInfo, InstanceKey, Signing};

pub(crate) use error::classify_sqlx;
pub use error::{FailureKind, StoreError, StoreResult};
pub use identity::ClientIdentity;
pub use ordering::DeliveryOrder;
pub use stats::{GroupCommitTotals, StoreStats};

/// The internal key of an instance; never shown outside the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Sandbox,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Sandbox => "sandbox",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "live" => Some(Mode::Live),
            "sandbox" => Some(Mode::Sandbox),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub id: InstanceId,
    pub name: String,
    pub customer_id: String,
    pub mode: Mode,
    pub created_at: DateTime<Utc>,
    /// Bytes of callbacks the instance has stored (what its quota counts).
    pub stored_bytes: u64,
    pub sandbox: SandboxSettings,
}

/// How an instance's sandbox behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Check `flinks-auth-key` and `x-api-key` as Flinks' production does; by default the
    /// sandbox is as lenient as Flinks' public test environment.
    pub strict_auth: bool,
    /// How long the simulated aggregation takes, in milliseconds.
    pub delay_ms: u64,
}

#[derive(Debug, Clone)]
pub struct NewInstance {
    pub name: String,
    pub customer_id: String,
    pub mode: Mode,
    pub api_key_hash: KeyHash,
    pub now: DateTime<Utc>,
}

/// Which answers count as a successful delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuccessRule {
    /// Flinks' rule: HTTP 200 and nothing else.
    #[serde(rename = "exactly_200")]
    Exactly200,
    #[serde(rename = "any_2xx")]
    Any2xx,
}

impl SuccessRule {
    pub fn as_str(self) -> &'static str {
        match self {
            SuccessRule::Exactly200 => "exactly_200",
            SuccessRule::Any2xx => "any_2xx",
        }
    }

    pub fn accepts(self, status: u16) -> bool {
        match self {
            SuccessRule::Exactly200 => status == 200,
            SuccessRule::Any2xx => (200..300).contains(&status),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: EndpointId,
    pub instance_id: InstanceId,
    pub url: String,
    pub description: Option<String>,
    /// `None` means every callback type (and no event).
    pub event_types: Option<Vec<MessageType>>,
    pub retry: RetryPolicy,
    pub success: SuccessRule,
    pub enabled: bool,
    /// When finhook disabled the endpoint because every attempt failed for too long; `None`
    /// once it is enabled again.
    pub auto_disabled_at: Option<DateTime<Utc>>,
    pub signing: Signing,
    pub client_certificate: Option<ClientCertificateInfo>,
    /// What the certificate watch last found at the endpoint's server (HTTPS only).
    pub certificate: Option<certificate::CertificateReport>,
    pub ordering: DeliveryOrder,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Endpoint {
    pub fn subscribes_to(&self, message_type: MessageType) -> bool {
        message_type.taken_by(self.event_types.as_deref())
    }
}

/// Everything needed to create an endpoint, already validated.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Option<Vec<MessageType>>,
    pub retry: RetryPolicy,
    pub success: SuccessRule,
    pub enabled: bool,
    pub signing: Signing,
    pub client_identity: Option<ClientIdentity>,
    pub ordering: DeliveryOrder,
    pub secret: EndpointSecret,
    pub now: DateTime<Utc>,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Option<Vec<MessageType>>>,
    pub retry: Option<RetryPolicy>,
    pub success: Option<SuccessRule>,
    pub enabled: Option<bool>,
    pub signing: Option<Signing>,
    /// `Some(None)` removes the client certificate.
    pub client_identity: Option<Option<ClientIdentity>>,
    pub ordering: Option<DeliveryOrder>,
}

/// A validated callback ready to be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub instance_id: InstanceId,
    pub response_type: MessageType,
    pub login_id: Option<String>,
    pub request_id: Option<String>,
    pub tag: Option<String>,
    pub idempotency_key: Option<String>,
    pub body_sha256: String,
    /// The exact bytes received, shared (not copied) with whoever else holds them.
    pub payload: bytes::Bytes,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored now, with these deliveries scheduled (due at once).
    Created { message_id: MessageId, deliveries: Vec<ScheduledDelivery> },
    /// The `Idempotency-Key` was seen before with the same body.
    Replayed { message_id: MessageId },
    /// The `Idempotency-Key` was seen before with a different body.
    KeyReused { message_id: MessageId },
}

/// A delivery that ingest just scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledDelivery {
    pub id: DeliveryId,
    pub endpoint_id: EndpointId,
    /// On a shared store, leased to this node by the ingest itself, until then: its worker
    /// needs no claim of its own (see [`queue::DeliveryQueue::lease_new_deliveries`]).
    pub leased_until: Option<DateTime<Utc>>,
    /// Its `webhook-sequence`: its place among its LoginId's callbacks to its endpoint
    /// (none for a callback without a LoginId).
    pub sequence: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed, Self::Cancelled].into_iter().find(|s| s.as_str() == value)
    }
}

/// A stored message without its payload.
#[derive(Debug, Clone)]
pub struct MessageSummary {
    pub id: MessageId,
    pub response_type: MessageType,
    pub login_id: Option<String>,
    pub request_id: Option<String>,
    pub tag: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The status of each delivery, oldest first. Filled by `list_messages`; empty where
    /// the deliveries come whole beside the summary (`MessageDetail`).
    pub delivery_statuses: Vec<DeliveryStatus>,
}

#[derive(Debug, Clone)]
pub struct MessageFilter {
    pub login_id: Option<String>,
    pub tag: Option<String>,
    pub request_id: Option<String>,
    /// Received at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Received at or before this.
    pub until: Option<DateTime<Utc>>,
    pub response_type: Option<MessageType>,
    /// Messages with at least one delivery in this status.
    pub status: Option<DeliveryStatus>,
    /// Only messages older than this one (the previous page's last id).
    pub before: Option<MessageId>,
    pub limit: u32,
}

/// Why an attempt failed, as the contract names the classes (`error_class` in the API and
/// the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// No answer within the endpoint timeout.
    Timeout,
    /// The TCP connection could not be made, or broke before an answer.
    Connect,
    /// The host name did not resolve.
    Dns,
    /// The certificate did not verify (self-signed, unknown issuer, wrong host, expired).
    Tls,
    /// The target is a refused address.
    Blocked,
    /// An answer came, but not a successful one (or not valid HTTP).
    Http,
    /// finhook could not sign the callback (an endpoint secret it cannot use); nothing was
    /// sent.
    Signing,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 7] =
        [Self::Timeout, Self::Connect, Self::Dns, Self::Tls, Self::Blocked, Self::Http, Self::Signing];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Dns => "dns",
            Self::Tls => "tls",
            Self::Blocked => "blocked",
            Self::Http => "http",
            Self::Signing => "signing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == text)
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub id: AttemptId,
    pub attempt_number: u32,
    pub started_at: DateTime<Utc>,
    pub latency_ms: u64,
    pub status_code: Option<u16>,
    pub error_class: Option<ErrorClass>,
    pub error_detail: Option<String>,
    /// The start of the receiver's answer, as storable text (see `finhook_core::text`).
    pub response_excerpt: Option<String>,
    /// How many bytes of the answer were read for the excerpt, before it was made text.
    pub response_bytes: Option<u64>,
    pub succeeded: bool,
}

#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub endpoint_id: EndpointId,
    pub status: DeliveryStatus,
    pub attempts_made: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// A later delivery of the same message to the same endpoint (a redelivery) took its
    /// place: kept as history, it no longer says the message's state there.
    pub superseded: bool,
    /// Its `webhook-sequence`, if its callback has a LoginId.
    pub sequence: Option<u64>,
    pub attempts: Vec<AttemptRecord>,
}

#[derive(Debug, Clone)]
pub struct MessageDetail {
    pub summary: MessageSummary,
    pub payload: Vec<u8>,
    pub deliveries: Vec<DeliveryRecord>,
}

/// An endpoint as the delivery worker needs it: where and how to deliver, and its secrets
/// (already unsealed), as they were when it was read.
#[derive(Debug, Clone)]
pub struct DispatchEndpoint {
    pub id: EndpointId,
    pub instance_id: InstanceId,
    /// The instance's name, for the metrics' labels.
    pub instance_name: String,
    pub url: String,
    pub retry: RetryPolicy,
    pub success: SuccessRule,
    pub enabled: bool,
    /// Secrets not yet expired when read, current first, each with the time it stops
    /// signing (`None` for the current one).
    pub secrets: Vec<(EndpointSecret, Option<DateTime<Utc>>)>,
    pub signing: Signing,
    /// With [`Signing::Ed25519`]: the instance's keys not yet expired when read, current first.
    pub signing_keys: signing::OpenedKeys,
    /// The client certificate presented on every attempt (mutual TLS), if any.
    pub identity: Option<Arc<ClientIdentity>>,
    pub ordering: DeliveryOrder,
}

impl DispatchEndpoint {
    /// The secrets that still sign at `now`, current first.
    pub fn secrets_at(&self, now: DateTime<Utc>) -> Vec<EndpointSecret> {
        self.secrets
            .iter()
            .filter(|(_, expires_at)| expires_at.is_none_or(|end| end > now))
            .map(|(secret, _)| secret.clone())
            .collect()
    }

    /// The Ed25519 keys that still sign at `now`, current first.
    pub fn signing_keys_at(&self, now: DateTime<Utc>) -> Vec<&SigningKey> {
        self.signing_keys
            .iter()
            .filter(|(_, expires_at)| expires_at.is_none_or(|end| end > now))
            .map(|(key, _)| key.as_ref())
            .collect()
    }
}

/// A pending delivery a worker has taken, without its payload or endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub delivery_id: DeliveryId,
    pub message_id: MessageId,
    pub endpoint_id: EndpointId,
    /// 1-based number of the attempt about to be made.
    pub attempt_number: u32,
    /// Its `webhook-sequence`, if its callback has a LoginId.
    pub sequence: Option<u64>,
}

/// What [`queue::DeliveryQueue::take_due`] found for one endpoint.
#[derive(Debug, Clone, Default)]
pub struct TakenDue {
    /// Due deliveries, most overdue first.
    pub due: Vec<DueDelivery>,
    /// The limit was reached: more may be due.
    pub more: bool,
    /// When `more` is false: when the endpoint's next pending delivery falls due, if any.
    pub next_due_at: Option<DateTime<Utc>>,
}

/// What a finished attempt leaves in the store.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub delivery_id: DeliveryId,
    pub endpoint_id: EndpointId,
    /// What the attempt's ledger entry needs besides the attempt itself.
    pub ledger: LedgerSource,
    pub attempt: AttemptRecord,
    /// `None` when the delivery is finished (delivered, or failed for good).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub new_status: DeliveryStatus,
}

/// What an attempt's ledger entry needs besides the attempt record, from the worker's own
/// memory, so that chaining it reads nothing of the message from the store.
#[derive(Debug, Clone)]
pub struct LedgerSource {
    pub instance_id: InstanceId,
    pub message_id: MessageId,
    /// SHA-256 of the callback's body as received (the stored payload), in lowercase hex.
    pub body_sha256: String,
    /// The endpoint's URL as attempted (an endpoint's URL may change later).
    pub endpoint_url: String,
}

/// The store interface. Implementations are cheap to clone handles around a pool.
#[async_trait]
pub trait Store:
    queue::DeliveryQueue
    + sandbox::SandboxStore
    + ledger::LedgerStore
    + events::EventStore
    + health::HealthStore
    + recovery::RecoveryStore
    + audit::AuditStore
    + activity::ActivityStore
    + feed::FeedStore
    + portal::PortalStore
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// Answers when the database does.
    async fn ping(&self) -> StoreResult<()>;
    /// Shuts the store down in order: stops taking writes, commits and answers those
    /// already queued, closes the connections and releases the embedded store's lock.
    /// Every call after it fails.
    async fn close(&self);
    /// Deletes messages received before `cutoff` whose deliveries are all finished, with
    /// their deliveries and attempts; returns how many messages went.
    async fn purge_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64>;
    /// Counts for the metrics endpoint, as of `now`.
    async fn stats(&self, now: DateTime<Utc>) -> StoreResult<StoreStats>;

    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance>;
    async fn instance_by_name(&self, name: &str) -> StoreResult<Option<Instance>>;
    async fn instance_by_key_hash(&self, hash: &KeyHash) -> StoreResult<Option<Instance>>;
    /// Replaces the instance's API key; the old one stops working at once.
    async fn set_instance_key_hash(&self, instance: InstanceId, hash: &KeyHash) -> StoreResult<()>;
    /// Whether `hash` is this instance's API key hash.
    async fn instance_key_matches(&self, instance: InstanceId, hash: &KeyHash) -> StoreResult<bool>;
    async fn list_instances(&self) -> StoreResult<Vec<Instance>>;

    async fn create_endpoint(&self, instance: InstanceId, new: NewEndpoint) -> StoreResult<Endpoint>;
    async fn endpoint(&self, instance: InstanceId, id: &EndpointId) -> StoreResult<Option<Endpoint>>;
    async fn list_endpoints(&self, instance: InstanceId) -> StoreResult<Vec<Endpoint>>;
    /// Every enabled endpoint of every instance whose URL is HTTPS: what the certificate
    /// watch looks at.
    async fn watched_endpoints(&self) -> StoreResult<Vec<Endpoint>>;
    /// Records what the certificate watch found at an endpoint (`None`: nothing to watch).
    async fn set_endpoint_certificate(
        &self,
        id: &EndpointId,
        report: Option<&certificate::CertificateReport>,
    ) -> StoreResult<()>;
    async fn update_endpoint(
        &self,
        instance: InstanceId,
        id: &EndpointId,
        patch: EndpointPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Endpoint>>;
    /// Deletes the endpoint and cancels its pending deliveries. `false` if it did not exist.
    async fn delete_endpoint(&self, instance: InstanceId, id: &EndpointId, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Makes `secret` the signing secret; the previous one keeps signing until `old_expires_at`.
    async fn rotate_secret(
        &self,
        instance: InstanceId,
        id: &EndpointId,
        secret: &EndpointSecret,
        now: DateTime<Utc>,
        old_expires_at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// The instance's Ed25519 signing keys still signing at `now`, newest first.
    async fn signing_keys(&self, instance: InstanceId, now: DateTime<Utc>) -> StoreResult<Vec<InstanceKey>>;
    /// Adds `key` unless the instance has a signing key without an end; whether it did.
    async fn add_signing_key_if_none(
        &self,
        instance: InstanceId,
        key: &SigningKey,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Makes `key` the instance's signing key; the others sign until `old_expires_at`.
    async fn rotate_signing_key(
        &self,
        instance: InstanceId,
        key: &SigningKey,
        now: DateTime<Utc>,
        old_expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Stores a message and schedules a delivery to every enabled, subscribed endpoint.
    async fn ingest(&self, message: NewMessage) -> StoreResult<IngestOutcome>;
    async fn list_messages(&self, instance: InstanceId, filter: &MessageFilter) -> StoreResult<Vec<MessageSummary>>;
    async fn message(&self, instance: InstanceId, id: &MessageId) -> StoreResult<Option<MessageDetail>>;
    /// Every message of one LoginId, oldest first, with its deliveries.
    async fn login_messages(&self, instance: InstanceId, login_id: &str) -> StoreResult<Vec<MessageDetail>>;
    /// A new delivery round for a message: to `endpoint` only, or to every enabled,
    /// subscribed endpoint. `None` if the message (or the named endpoint) does not exist.
    async fn redeliver(
        &self,
        instance: InstanceId,
        id: &MessageId,
        endpoint: Option<&EndpointId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<DeliveryId>>>;
}

#[cfg(test)]
mod tests {
    use super::ErrorClass;

    #[test]
    fn error_classes_read_back_and_serialize_as_stored() {
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::parse(class.as_str()), Some(class));
            assert_eq!(serde_json::to_value(class).expect("json"), class.as_str());
        }
        assert_eq!(ErrorClass::parse("HTTP"), None);
    }
}
