//! The delivery worker: claim due deliveries, sign, POST, record, schedule the next try.
//!
//! Each delivery goes through small typed steps, and only the first and last touch the
//! store, each in its own short transaction; nothing is held open across the HTTP call:
//!
//! ```text
//! claim_due (store) -> sign (pure) -> post (network) -> decide (pure) -> record_attempt (store)
//! ```
//!
//! The schedule lives in the store. A crash between claim and record leaves a claim that
//! expires (or is released when the embedded store reopens), and the same attempt is made
//! again: delivery is at least once, and receivers deduplicate on `webhook-id`.

pub mod client;
pub mod target;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use finhook_core::ids::AttemptId;
use finhook_core::signing;
use finhook_core::text::{storable_str, storable_text};
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::{AttemptRecord, AttemptResult, ClaimedDelivery, DeliveryStatus, ErrorClass, Store, StoreError};
use client::{DeliveryClient, SendOutcome};

/// Tuning of the worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight at once to any one endpoint.
    pub per_endpoint: usize,
    /// The per-attempt HTTP timeout; claims last this long plus a margin.
    pub timeout: Duration,
    /// The longest the worker sleeps before looking for due work on its own.
    pub poll_interval: Duration,
}

/// Margin between the end of an attempt's timeout and the end of its claim.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// What the worker shares with each delivery task.
#[derive(Debug)]
pub struct WorkerContext {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub client: DeliveryClient,
    pub settings: WorkerSettings,
    /// Poked by ingest and redeliver so new work starts without waiting for the poll.
    pub wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

/// Why a [`Worker::run_due`] round stopped.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error("the store failed during a delivery round")]
    Store(#[from] StoreError),
    #[error("a delivery task panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

/// A handle on the delivery worker; clone it freely.
#[derive(Debug, Clone)]
pub struct Worker {
    context: Arc<WorkerContext>,
}

impl Worker {
    pub fn new(context: WorkerContext) -> Self {
        Self { context: Arc::new(context) }
    }

    /// One round, for tests and tools: claims every delivery due now, makes all those
    /// attempts concurrently, records them, and returns how many were made.
    pub async fn run_due(&self) -> Result<usize, RoundError> {
        let mut made = 0;
        loop {
            let claimed = self.claim(self.context.settings.concurrency).await?;
            if claimed.is_empty() {
                return Ok(made);
            }
            made += claimed.len();
            let mut tasks = JoinSet::new();
            for delivery in claimed {
                tasks.spawn(deliver(self.context.clone(), delivery));
            }
            while let Some(joined) = tasks.join_next().await {
                joined.map_err(RoundError::Panicked)??;
            }
        }
    }

    /// Runs until `shutdown` resolves, then lets attempts in flight finish and be recorded.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let context = &self.context;
        let mut tasks: JoinSet<Result<(), StoreError>> = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while let Some(joined) = tasks.try_join_next() {
                log_task_result(joined);
            }
            let free = context.settings.concurrency.saturating_sub(tasks.len());
            let mut claimed_any = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok(claimed) => {
                        claimed_any = !claimed.is_empty();
                        for delivery in claimed {
                            tasks.spawn(deliver(context.clone(), delivery));
                        }
                    }
                    Err(error) => tracing::error!(error = %error, "claiming due deliveries failed"),
                }
            }
            if claimed_any && tasks.len() < context.settings.concurrency {
                continue;
            }
            let nap = self.time_until_due().await;
            tokio::select! {
                () = &mut shutdown => break,
                () = context.wake.notified() => {}
                () = tokio::time::sleep(nap) => {}
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => log_task_result(joined),
            }
        }
        tracing::info!(in_flight = tasks.len(), "delivery worker stopping; finishing attempts in flight");
        while let Some(joined) = tasks.join_next().await {
            log_task_result(joined);
        }
    }

    async fn claim(&self, limit: usize) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let context = &self.context;
        let now = context.clock.now();
        let claim_until = now + chrono_duration(context.settings.timeout + CLAIM_MARGIN);
        let per_endpoint = u32::try_from(context.settings.per_endpoint).unwrap_or(u32::MAX);
        context.store.claim_due(now, claim_until, u32::try_from(limit).unwrap_or(u32::MAX), per_endpoint).await
    }

    async fn time_until_due(&self) -> Duration {
        let poll = self.context.settings.poll_interval;
        match self.context.store.next_due_at().await {
            Ok(Some(due)) => (due - self.context.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), poll),
            Ok(None) => poll,
            Err(error) => {
                tracing::error!(error = %error, "reading the next due time failed");
                poll
            }
        }
    }
}

fn log_task_result(joined: Result<Result<(), StoreError>, tokio::task::JoinError>) {
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(error = %error, "recording an attempt failed; it will be made again"),
        Err(panic) => tracing::error!(error = %panic, "a delivery task panicked"),
    }
}

/// One attempt of one claimed delivery, from signing to recording.
async fn deliver(context: Arc<WorkerContext>, delivery: ClaimedDelivery) -> Result<(), StoreError> {
    let started_at = context.clock.now();
    let outcome = attempt(&context, &delivery, started_at).await;
    let jitter = rand::thread_rng().gen::<f64>();
    let result = decide(&delivery, started_at, outcome, jitter);
    tracing::info!(
        delivery = %delivery.delivery_id,
        message = %delivery.message_id,
        endpoint = %delivery.endpoint_id,
        attempt = delivery.attempt_number,
        status = ?result.attempt.status_code,
        error_class = result.attempt.error_class.map(ErrorClass::as_str),
        outcome = result.new_status.as_str(),
        "attempt made"
    );
    context.metrics.attempt_made(&result.attempt);
    record(&context, result).await
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
async fn attempt(context: &WorkerContext, delivery: &ClaimedDelivery, started_at: DateTime<Utc>) -> SendOutcome {
    let headers =
        match signing::sign(&delivery.secrets, delivery.message_id.as_str(), started_at.timestamp(), &delivery.payload)
        {
            Ok(headers) => headers,
            Err(error) => {
                return SendOutcome::Failed {
                    class: ErrorClass::Signing,
                    detail: format!("could not sign: {error}"),
                    latency: Duration::ZERO,
                }
            }
        };
    let body = bytes::Bytes::copy_from_slice(&delivery.payload);
    context.client.post(&delivery.url, body, &headers).await
}

/// Turns an outcome into what the store records: the attempt row, the delivery's new
/// status, and when the next attempt is due. Pure, so the schedule is tested without IO.
pub fn decide(
    delivery: &ClaimedDelivery,
    started_at: DateTime<Utc>,
    outcome: SendOutcome,
    jitter: f64,
) -> AttemptResult {
    // Whatever the receiver answered (UTF-16, NUL, invalid UTF-8) is made storable text
    // here, so recording the attempt never fails on its content, in either store.
    let (status_code, error_class, error_detail, excerpt, response_bytes, latency, succeeded) = match outcome {
        SendOutcome::Answered { status, head, latency } => {
            let ok = delivery.success.accepts(status);
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
        delivery.retry.delay_after(delivery.attempt_number, jitter).map(|delay| started_at + chrono_duration(delay))
    };
    let new_status = match (succeeded, next_attempt_at) {
        (true, _) => DeliveryStatus::Delivered,
        (false, Some(_)) => DeliveryStatus::Pending,
        (false, None) => DeliveryStatus::Failed,
    };
    AttemptResult {
        delivery_id: delivery.delivery_id.clone(),
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

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
