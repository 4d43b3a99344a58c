//! Accepting a callback: validate the exact bytes, then store them with their deliveries in
//! one transaction. Used by the HTTP API and, later, by the sandbox.

use chrono::{DateTime, Utc};
use finhook_core::flinks::{validate_callback, CallbackError, CallbackKeys, ParseLimits};
use finhook_core::ids::MessageId;
use finhook_core::secret::hex;
use sha2::{Digest, Sha256};

use crate::delivery::handoff::Dispatch;
use crate::delivery::Body;
use crate::store::{IngestOutcome, InstanceId, NewMessage, Store, StoreError};

/// Why a callback was not accepted. Nothing is stored in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body could not be read: {0}")]
    BodyRead(String),
    #[error("the Idempotency-Key was used before with a different body")]
    KeyReused { message_id: MessageId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A callback durably stored (or found stored under the same idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub message_id: MessageId,
    pub response_type: finhook_core::flinks::ResponseType,
    /// True when the same `Idempotency-Key` and body were accepted before.
    pub replayed: bool,
    pub deliveries: usize,
}

/// One callback to ingest.
#[derive(Debug, Clone, Copy)]
pub struct IngestRequest<'a> {
    pub instance: InstanceId,
    /// The exact bytes received; shared with the delivery worker, never copied for it.
    pub body: &'a bytes::Bytes,
    pub idempotency_key: Option<&'a str>,
    pub limits: ParseLimits,
    pub now: DateTime<Utc>,
}

/// The row a validated callback is stored as: its conciliation keys, its exact bytes and
/// their SHA-256.
pub fn new_message(
    instance: InstanceId,
    body: &bytes::Bytes,
    keys: CallbackKeys,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> NewMessage {
    NewMessage {
        instance_id: instance,
        response_type: keys.response_type.into(),
        login_id: keys.login_id,
        request_id: keys.request_id,
        tag: keys.tag,
        idempotency_key: idempotency_key.map(str::to_string),
        body_sha256: hex(&Sha256::digest(body)),
        payload: body.clone(),
        now,
    }
}

/// Validates and stores one callback, then hands its deliveries to the worker. Returns
/// only once the message is committed.
pub async fn ingest_callback(
    store: &dyn Store,
    dispatch: &Dispatch,
    request: IngestRequest<'_>,
) -> Result<Accepted, IngestError> {
    // Only the keys are needed: the bytes are stored as received.
    let keys = validate_callback(request.body, request.limits)?;
    let response_type = keys.response_type;
    let message = new_message(request.instance, request.body, keys, request.idempotency_key, request.now);
    let body_sha256 = message.body_sha256.clone();
    match store.ingest(message).await? {
        IngestOutcome::Created { message_id, deliveries } => {
            dispatch.hand_off(&message_id, &Body::hashed(request.body.clone(), &body_sha256), &deliveries);
            Ok(Accepted { message_id, response_type, replayed: false, deliveries: deliveries.len() })
        }
        IngestOutcome::Replayed { message_id } => {
            Ok(Accepted { message_id, response_type, replayed: true, deliveries: 0 })
        }
        IngestOutcome::KeyReused { message_id } => Err(IngestError::KeyReused { message_id }),
    }
}
