//! The worker's steps for one attempt: sign and POST ([`attempt`]), turn the outcome into
//! what the store records ([`decide`], pure), and store that record ([`record`]), each a
//! function of its own so that no transaction is open across the HTTP call.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use finhook_core::ids::AttemptId;
use finhook_core::signing;
use finhook_core::text::{storable_str, storable_text};
use rand::Rng;

use super::client::SendOutcome;
use super::health::Reach;
use super::lanes::Start;
use super::Body;
use super::{chrono_duration, Answered, Finished, WorkerContext};
use crate::store::{
    AttemptRecord, AttemptResult, DeliveryStatus, DispatchEndpoint, DueDelivery, ErrorClass, LedgerSource, Signing,
    StoreError,
};

/// One attempt of one delivery, from signing to its answer (its record is stored after).
pub(super) async fn deliver(context: Arc<WorkerContext>, start: Start) -> Answered {
    let Start { ready, endpoint } = start;
    let delivery = ready.due;
    let started_at = context.clock.now();
    let outcome = attempt(&context, &endpoint, &delivery, ready.payload.bytes(), started_at).await;
    let jitter = rand::thread_rng().gen::<f64>();
    let result = decide(&endpoint, &delivery, &ready.payload, started_at, outcome, jitter);
    if result.attempt.error_class == Some(ErrorClass::Tls) {
        context.certificates.recheck(&delivery.endpoint_id);
    }
    tracing::info!(
        delivery = %delivery.delivery_id,
        message = %delivery.message_id,
        endpoint = %delivery.endpoint_id,
        attempt = delivery.attempt_number,
        status = result.attempt.status_code,
        error_class = result.attempt.error_class.map(ErrorClass::as_str),
        outcome = result.new_status.as_str(),
        "attempt made"
    );
    context.metrics.attempt_made(&endpoint.instance_name, &delivery.endpoint_id, &result.attempt);
    context.health.record(&delivery.endpoint_id, &result.attempt);
    let reach = match (result.attempt.status_code, result.attempt.error_class) {
        (Some(_), _) => Reach::Answered,
        (None, Some(ErrorClass::Timeout | ErrorClass::Connect)) => Reach::Unreachable,
        (None, _) => Reach::Unknown,
    };
    Answered { endpoint_id: delivery.endpoint_id, result, reach }
}

/// Stores an answered attempt's record.
pub(super) async fn store_record(context: Arc<WorkerContext>, answered: Answered) -> Finished {
    let Answered { endpoint_id, result, .. } = answered;
    let delivery_id = result.delivery_id.clone();
    let next = result.next_attempt_at;
    let recorded = match record(&context, result).await {
        Ok(()) => Some(next),
        Err(error) => {
            tracing::error!(delivery = %delivery_id, error = %crate::http::ErrorChain(&error), "recording an attempt failed; it will be made again");
            None
        }
    };
    Finished { endpoint_id, delivery_id, recorded }
}

/// How often an attempt's record is tried before it is stored slimmed down.
const RECORD_TRIES: u32 = 3;
/// The wait before the second try; each later wait is four times longer.
const RECORD_BACKOFF: Duration = Duration::from_millis(50);

/// Records an attempt, or says loudly why it could not.
///
/// An unrecorded attempt is made again when its claim runs out, so a record that keeps
/// failing would re-send the same callback every lease period, forever. So: a few tries;
/// then the record without its free text (the excerpt and error detail are the only
/// parts that came from outside), which still moves the delivery to its next scheduled
/// attempt; every failure counts in `finhook_store_write_errors_total`. Only when the store
/// takes no write at all does the claim run out, and then no claim can be taken either.
async fn record(context: &WorkerContext, result: AttemptResult) -> Result<(), StoreError> {
    let mut wait = RECORD_BACKOFF;
    for attempt in 1..=RECORD_TRIES {
        let error = match context.store.record_attempt(result.clone()).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        context.metrics.store_write_failed(error.kind());
        tracing::error!(
            delivery = %result.delivery_id,
            try_number = attempt,
            error = %crate::http::ErrorChain(&error),
            "recording an attempt failed"
        );
        if attempt < RECORD_TRIES {
            tokio::time::sleep(wait).await;
            wait *= 4;
        }
    }
    let slim = slimmed(result);
    context.store.record_attempt(slim).await.inspect_err(|error| {
        context.metrics.store_write_failed(error.kind());
    })
}

/// The record of an attempt without the text that came from outside, for when the whole
/// record cannot be stored.
fn slimmed(mut result: AttemptResult) -> AttemptResult {
    result.attempt.response_excerpt = None;
    result.attempt.error_detail =
        Some("the full record of this attempt could not be stored; see the server log".into());
    result
}

/// Signs and POSTs. Never fails: every problem becomes a failed attempt.
async fn attempt(
    context: &WorkerContext,
    endpoint: &DispatchEndpoint,
    delivery: &DueDelivery,
    payload: &bytes::Bytes,
    started_at: DateTime<Utc>,
) -> SendOutcome {
    let secrets = endpoint.secrets_at(started_at);
    let (id, timestamp) = (delivery.message_id.as_str(), started_at.timestamp());
    let signed = match endpoint.signing {
        Signing::Hmac => signing::sign(&secrets, id, timestamp, payload),
        Signing::Ed25519 => signing::sign_v1a(&secrets, &endpoint.signing_keys_at(started_at), id, timestamp, payload),
    };
    let headers = match signed {
        Ok(headers) => headers,
        Err(error) => {
            return SendOutcome::Failed {
                class: ErrorClass::Signing,
                detail: format!("could not sign: {error}"),
                latency: Duration::ZERO,
            }
        }
    };
    let identity = endpoint.identity.as_deref();
    context.client.post(&endpoint.url, payload.clone(), &headers, delivery.sequence, identity).await
}

/// Turns an outcome into what the store records: the attempt row, the delivery's new
/// status, and when the next attempt is due. Pure, so the schedule is tested without IO.
pub fn decide(
    endpoint: &DispatchEndpoint,
    delivery: &DueDelivery,
    payload: &Body,
    started_at: DateTime<Utc>,
    outcome: SendOutcome,
    jitter: f64,
) -> AttemptResult {
    // Whatever the receiver answered (UTF-16, NUL, invalid UTF-8) is made storable text
    // here, so recording the attempt never fails on its content, in either store.
    let (status_code, error_class, error_detail, excerpt, response_bytes, latency, succeeded) = match outcome {
        SendOutcome::Answered { status, head, latency } => {
            let ok = endpoint.success.accepts(status);
            let class = (!ok).then_some(ErrorClass::Http);
            let bytes = u64::try_from(head.len()).unwrap_or(u64::MAX);
            (Some(status), class, None, Some(storable_text(&head)), Some(bytes), latency, ok)
        }
        SendOutcome::Failed { class, detail, latency } => {
            (None, Some(class), Some(storable_str(&detail)), None, None, latency, false)
        }
    };
    let next_attempt_at = if succeeded {
        None
    } else {
        endpoint.retry.delay_after(delivery.attempt_number, jitter).map(|delay| started_at + chrono_duration(delay))
    };
    let new_status = match (succeeded, next_attempt_at) {
        (true, _) => DeliveryStatus::Delivered,
        (false, Some(_)) => DeliveryStatus::Pending,
        (false, None) => DeliveryStatus::Failed,
    };
    AttemptResult {
        delivery_id: delivery.delivery_id.clone(),
        endpoint_id: delivery.endpoint_id.clone(),
        ledger: LedgerSource {
            instance_id: endpoint.instance_id,
            message_id: delivery.message_id.clone(),
            body_sha256: payload.sha256().to_string(),
            endpoint_url: endpoint.url.clone(),
        },
        attempt: AttemptRecord {
            id: AttemptId::generate(),
            attempt_number: delivery.attempt_number,
            started_at,
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            status_code,
            error_class,
            error_detail,
            response_excerpt: excerpt,
            response_bytes,
            succeeded,
        },
        next_attempt_at,
        new_status,
    }
}
