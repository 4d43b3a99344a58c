//! The delivery worker: take due deliveries, sign, POST, record, schedule the next try.
//!
//! Each delivery goes through small typed steps, and only the first and last touch the
//! store, each in its own short transaction; nothing is held open across the HTTP call:
//!
//! ```text
//! hand-off or take_due (store) -> sign (pure) -> post (network) -> decide (pure) -> record_attempt (store)
//! ```
//!
//! Fresh deliveries come straight from ingest with their payload ([`handoff`]); the rest
//! (retries, a backlog, work left at a restart) are paged in per endpoint from the store
//! ([`lanes`]). The store stays the record: a crash between taking and recording leaves the
//! delivery pending (on a shared store, behind a lease that runs out), and the same attempt
//! is made again: delivery is at least once, and receivers deduplicate on `webhook-id`.

pub mod certificate;
pub mod client;
pub mod handoff;
mod health;
mod lane;
mod lanes;
mod recent;
pub mod target;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use finhook_core::ids::{AttemptId, DeliveryId, EndpointId};
use finhook_core::signing;
use finhook_core::text::{storable_str, storable_text};
use rand::Rng;
use tokio::sync::Mutex;
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::queue::{HEARTBEAT_EVERY, STOP_STARTING_AFTER};
use crate::store::{
    AttemptRecord, AttemptResult, DeliveryStatus, DispatchEndpoint, DueDelivery, ErrorClass, LedgerSource, Signing,
    Store, StoreError,
};
use client::{DeliveryClient, SendOutcome};
use handoff::{Fresh, Inbox};
use health::Reach;
use lanes::{Lanes, Start};
use sha2::Digest;

/// Tuning of the worker.
#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight at once to any one endpoint.
    pub per_endpoint: usize,
    /// The per-attempt HTTP timeout; leases last this long plus a margin.
    pub timeout: Duration,
    /// An attempt running this long gives its slot back and counts as slow (see [`lanes`]).
    pub slow_after: Duration,
    /// How often the worker looks at every endpoint's due deliveries in the store on its
    /// own (other nodes' expired leases, changes it was not told about).
    pub poll_interval: Duration,
}

/// Margin between the end of an attempt's timeout and the end of its lease.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// How many handed-over deliveries the worker takes in one turn.
const FRESH_BATCH: usize = 512;

/// What the worker shares with each delivery task.
#[derive(Debug)]
pub struct WorkerContext {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub client: DeliveryClient,
    /// Told of attempts that failed in TLS, to look at the endpoint's certificate again.
    pub certificates: Arc<certificate::CertificateWatch>,
    pub settings: WorkerSettings,
    pub metrics: Arc<Metrics>,
    /// Counts each attempt for its endpoint's health.
    pub health: Arc<crate::health::HealthRecorder>,
}

/// Why a [`Worker::run_due`] round stopped.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error("the store failed during a delivery round")]
    Store(#[from] StoreError),
    #[error("a delivery task panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

/// An attempt whose exchange with the endpoint is over; its record is still to be stored.
struct Answered {
    endpoint_id: EndpointId,
    result: AttemptResult,
    reach: Reach,
}

/// An attempt's record, stored or not.
struct Finished {
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
    /// `Some(next due time)` once recorded; `None` if the record failed.
    recorded: Option<Option<DateTime<Utc>>>,
}

/// What woke the worker up.
enum Event {
    Shutdown,
    Answered(Result<Answered, tokio::task::JoinError>),
    Recorded(Result<Finished, tokio::task::JoinError>),
    /// A hand-off, or `None` for a rescan or an overflow.
    Fresh(Option<Fresh>),
    Tick,
}

/// The worker's state, owned by whoever drives it ([`Worker::run`] or [`Worker::run_due`]).
struct Engine {
    inbox: Inbox,
    lanes: Lanes,
    /// Attempts in flight: signing, sending, waiting for the answer.
    tasks: JoinSet<Answered>,
    /// Records of answered attempts, waiting for the store's commit.
    recording: JoinSet<Finished>,
    /// Hand-offs received while waiting, taken on the next turn.
    received: Vec<Fresh>,
    next_poll: Option<DateTime<Utc>>,
    /// On a shared store: when this node next says it is alive, and when it last managed to.
    next_heartbeat: Option<DateTime<Utc>>,
    alive_at: Option<DateTime<Utc>>,
}

/// A handle on the delivery worker; clone it freely.
#[derive(Clone)]
pub struct Worker {
    context: Arc<WorkerContext>,
    engine: Arc<Mutex<Engine>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("settings", &self.context.settings).finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker fed by `inbox` (the other end of the [`handoff::Dispatch`] ingest uses).
    pub fn new(context: WorkerContext, inbox: Inbox) -> Self {
        let engine = Engine {
            inbox,
            lanes: Lanes::new(context.settings.concurrency, context.settings.per_endpoint, context.settings.slow_after),
            tasks: JoinSet::new(),
            recording: JoinSet::new(),
            received: Vec::new(),
            next_poll: None,
            next_heartbeat: None,
            alive_at: None,
        };
        Self { context: Arc::new(context), engine: Arc::new(Mutex::new(engine)) }
    }

    /// One round, for tests and tools: looks at every endpoint, makes every attempt due
    /// now (within the concurrency limits, round after round), records them, and returns
    /// how many were made.
    pub async fn run_due(&self) -> Result<usize, RoundError> {
        let context = &self.context;
        let mut engine = self.engine.lock().await;
        engine.lanes.rescan_all(context.store.as_ref(), context.clock.now()).await?;
        let mut made = 0;
        loop {
            made += engine.turn(context).await?;
            if engine.tasks.is_empty() && engine.recording.is_empty() {
                return Ok(made);
            }
            while let Some(joined) = engine.tasks.join_next().await {
                let answered = joined.map_err(RoundError::Panicked)?;
                engine.answered(context, answered);
            }
            while let Some(joined) = engine.recording.join_next().await {
                let finished = joined.map_err(RoundError::Panicked)?;
                engine.finish(context, finished);
            }
        }
    }

    /// Runs until `shutdown` resolves, then lets attempts in flight finish and be recorded.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let context = &self.context;
        let mut engine = self.engine.lock().await;
        // While this runs, ingest leases what it hands over (on a shared store), so the
        // worker needs no claim of its own; it gives back what it does not take.
        context.store.lease_new_deliveries(chrono_duration(context.settings.timeout + CLAIM_MARGIN));
        tokio::pin!(shutdown);
        loop {
            if let Err(error) = engine.turn(context).await {
                tracing::error!(error = %crate::http::ErrorChain(&error), "the delivery worker could not read the store; trying again");
                // Not at once: the store is failing. The next poll, hand-off or finished
                // attempt brings the worker back.
                let retry = context.clock.now() + chrono_duration(context.settings.poll_interval);
                engine.next_poll = Some(engine.next_poll.map_or(retry, |poll| poll.min(retry)));
            }
            let wait = engine.time_to_next(context);
            let event = {
                let Engine { inbox, tasks, recording, .. } = &mut *engine;
                tokio::select! {
                    biased;
                    () = &mut shutdown => Event::Shutdown,
                    Some(joined) = tasks.join_next(), if !tasks.is_empty() => Event::Answered(joined),
                    Some(joined) = recording.join_next(), if !recording.is_empty() => Event::Recorded(joined),
                    fresh = inbox.next() => Event::Fresh(fresh),
                    () = tokio::time::sleep(wait) => Event::Tick,
                }
            };
            match event {
                Event::Shutdown => break,
                Event::Fresh(fresh) => engine.received.extend(fresh),
                Event::Tick => {}
                joined => engine.joined(context, joined),
            }
        }
        tracing::info!(in_flight = engine.tasks.len(), "delivery worker stopping; finishing attempts in flight");
        // Ingests from now on leave their deliveries to any node; what is queued here and
        // not yet started (and what ingest leased and handed over, not yet taken) goes back
        // to the other nodes now, not when its lease would have run out.
        context.store.lease_new_deliveries(chrono::Duration::zero());
        let mut queued = engine.lanes.drain_leased();
        queued.extend(engine.received.drain(..).filter(|fresh| fresh.leased_until.is_some()).map(|f| f.delivery_id));
        queued.extend(engine.inbox.drain_leased());
        if !queued.is_empty() {
            match context.store.release(&queued).await {
                Ok(()) => tracing::info!(released = queued.len(), "released the claims of deliveries not started"),
                Err(error) => tracing::warn!(
                    error = %crate::http::ErrorChain(&error),
                    "could not release the claims of deliveries not started; other nodes take them when they expire"
                ),
            }
        }
        loop {
            let event = {
                let Engine { tasks, recording, .. } = &mut *engine;
                tokio::select! {
                    Some(joined) = tasks.join_next(), if !tasks.is_empty() => Event::Answered(joined),
                    Some(joined) = recording.join_next(), if !recording.is_empty() => Event::Recorded(joined),
                    else => break,
                }
            };
            engine.joined(context, event);
        }
    }
}

impl Engine {
    /// One turn: take in what changed, look at the store where needed, start what can
    /// start. Returns how many attempts were started.
    async fn turn(&mut self, context: &Arc<WorkerContext>) -> Result<usize, StoreError> {
        let started = self.turn_inner(context).await;
        context.metrics.store_scans(self.lanes.take_scans());
        started
    }

    async fn turn_inner(&mut self, context: &Arc<WorkerContext>) -> Result<usize, StoreError> {
        let store = context.store.as_ref();
        let now = context.clock.now();
        let lease_until = now + chrono_duration(context.settings.timeout + CLAIM_MARGIN);
        while let Some(joined) = self.tasks.try_join_next() {
            self.joined(context, Event::Answered(joined));
        }
        while let Some(joined) = self.recording.try_join_next() {
            self.joined(context, Event::Recorded(joined));
        }
        let released = self.lanes.take_released();
        if !released.is_empty() {
            if let Err(error) = store.release(&released).await {
                tracing::warn!(
                    error = %crate::http::ErrorChain(&error),
                    "could not release the claims of deliveries set aside; other nodes take them when they expire"
                );
            }
        }
        self.heartbeat(store, now).await;
        self.lanes.check_version(store, now).await?;
        if self.inbox.take_rescan() || self.next_poll.is_none_or(|poll| poll <= now) {
            self.lanes.rescan_all(store, now).await?;
            self.next_poll = Some(now + chrono_duration(context.settings.poll_interval));
        }
        let mut fresh = std::mem::take(&mut self.received);
        while fresh.len() < FRESH_BATCH {
            match self.inbox.try_next() {
                Some(item) => fresh.push(item),
                None => break,
            }
        }
        self.lanes.take_fresh(store, fresh, now, lease_until).await?;
        // Hand-offs that found the inbox full, leased by their ingest: given back before the
        // scan below, which then finds them like any other due delivery.
        store.release(&self.inbox.take_unclaimed()).await?;
        self.lanes.overflowed(self.inbox.take_overflowed(), now);
        self.lanes.scan_due(store, now, lease_until).await?;
        let timeout = chrono_duration(context.settings.timeout);
        let mut started = 0;
        if !self.may_start(store, now) {
            return Ok(started);
        }
        while let Some(start) = self.lanes.next_start(store, now, timeout).await {
            self.tasks.spawn(deliver(context.clone(), start));
            started += 1;
        }
        Ok(started)
    }

    /// On a shared store, says every [`HEARTBEAT_EVERY`] that this node is alive, so that
    /// the others leave its leases alone; when it cannot, they take them over once it has
    /// been silent for [`crate::store::queue::NODE_SILENT_AFTER`].
    async fn heartbeat(&mut self, store: &dyn Store, now: DateTime<Utc>) {
        // Not yet due, unless the clock went back (then the next beat would be far off,
        // and the others would take this node's leases while it still works them).
        let due_later = self.next_heartbeat.is_some_and(|at| at > now && at - now <= HEARTBEAT_EVERY);
        if !store.claims_are_leases() || due_later {
            return;
        }
        self.next_heartbeat = Some(now + HEARTBEAT_EVERY);
        match store.heartbeat(now).await {
            Ok(()) => self.alive_at = Some(now),
            Err(error) => tracing::warn!(
                error = %crate::http::ErrorChain(&error),
                "could not tell the shared store this node is alive; its leases pass to other nodes if this goes on"
            ),
        }
    }

    /// Whether attempts may start: on a shared store only while this node's heartbeat is
    /// recent, since the others take its leases over once it has been silent a while.
    fn may_start(&self, store: &dyn Store, now: DateTime<Utc>) -> bool {
        !store.claims_are_leases() || self.alive_at.is_some_and(|at| now >= at && now - at < STOP_STARTING_AFTER)
    }

    /// A task of either set ended.
    fn joined(&mut self, context: &Arc<WorkerContext>, event: Event) {
        match event {
            Event::Answered(Ok(answered)) => self.answered(context, answered),
            Event::Recorded(Ok(finished)) => self.finish(context, finished),
            Event::Answered(Err(panic)) | Event::Recorded(Err(panic)) => {
                tracing::error!(error = %panic, "a delivery task panicked");
            }
            Event::Shutdown | Event::Fresh(_) | Event::Tick => {}
        }
    }

    /// An attempt's exchange ended: its slot goes to the next attempt, and its record to
    /// the store, as a task of its own.
    fn answered(&mut self, context: &Arc<WorkerContext>, answered: Answered) {
        let now = context.clock.now();
        let paused = self.lanes.answered(&answered.endpoint_id, &answered.result.delivery_id, answered.reach, now);
        if let Some(paused) = paused {
            context.metrics.endpoint_paused();
            tracing::warn!(
                endpoint = %paused.endpoint,
                unreachable_attempts_in_row = health::BREAK_AFTER,
                until = %paused.until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "an endpoint could not be reached several times in a row; its deliveries wait in the store until then, when one attempt probes it"
            );
        }
        self.recording.spawn(store_record(context.clone(), answered));
    }

    fn finish(&mut self, context: &WorkerContext, finished: Finished) {
        let hold_until = context.clock.now() + chrono_duration(context.settings.timeout + CLAIM_MARGIN);
        self.lanes.recorded(&finished.endpoint_id, &finished.delivery_id, finished.recorded, hold_until);
    }

    /// How long the worker may wait when nothing happens: until a lane's next due time,
    /// or the next poll.
    fn time_to_next(&self, context: &WorkerContext) -> Duration {
        let now = context.clock.now();
        let next = [self.lanes.next_timer(), self.next_poll, self.next_heartbeat].into_iter().flatten().min();
        match next {
            Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO),
            None => context.settings.poll_interval,
        }
    }
}

/// One attempt of one delivery, from signing to its answer (its record is stored after).
async fn deliver(context: Arc<WorkerContext>, start: Start) -> Answered {
    let Start { ready, endpoint } = start;
    let delivery = ready.due;
    let started_at = context.clock.now();
    let outcome = attempt(&context, &endpoint, &delivery, &ready.payload, started_at).await;
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
async fn store_record(context: Arc<WorkerContext>, answered: Answered) -> Finished {
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
    context.client.post(&endpoint.url, payload.clone(), &headers, endpoint.identity.as_deref()).await
}

/// Turns an outcome into what the store records: the attempt row, the delivery's new
/// status, and when the next attempt is due. Pure, so the schedule is tested without IO.
pub fn decide(
    endpoint: &DispatchEndpoint,
    delivery: &DueDelivery,
    payload: &[u8],
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
            body_sha256: finhook_core::secret::hex(&sha2::Sha256::digest(payload)),
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

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
