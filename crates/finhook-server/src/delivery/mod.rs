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

mod body;
pub mod certificate;
pub mod client;
pub mod handoff;
mod health;
mod lane;
mod lanes;
mod recent;
mod steps;
pub mod target;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

pub use body::Body;

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::store::queue::{HEARTBEAT_EVERY, STOP_STARTING_AFTER};
use crate::store::{AttemptResult, Store, StoreError};
use client::DeliveryClient;
use handoff::{Fresh, Inbox};
use health::Reach;
use lanes::Lanes;
use steps::{deliver, store_record};

pub use steps::decide;

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
    /// Whether ingest leases what it hands over: `None` outside [`Worker::run`].
    ingest_leases: Option<bool>,
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
            ingest_leases: None,
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
        engine.ingest_leases = Some(true);
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
        engine.ingest_leases = None;
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
    /// On a shared store, ingest leases the deliveries it hands over to this node, which
    /// then needs no claim; but one that does not fit in its lane must be given back (an
    /// update of its row) and is claimed again when its lane has room (another). While
    /// lanes overflow, ingest stops leasing: what spills then costs nothing until it is
    /// claimed, and what is kept one claim. Leasing resumes once a turn keeps every
    /// hand-off. (Measured over 100 endpoints on PostgreSQL: docs/BENCHMARKS.md, "Ingest
    /// leases only while lanes have room".)
    fn adapt_ingest_leases(&mut self, context: &WorkerContext, taken: bool, spilled: usize) {
        let Some(leasing) = self.ingest_leases else { return };
        let wanted = if spilled > 0 {
            false
        } else if taken {
            true
        } else {
            leasing
        };
        if wanted != leasing {
            let lease = if wanted {
                chrono_duration(context.settings.timeout + CLAIM_MARGIN)
            } else {
                chrono::Duration::zero()
            };
            context.store.lease_new_deliveries(lease);
            self.ingest_leases = Some(wanted);
        }
    }

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
        let taken = !fresh.is_empty();
        let mut spilled = self.lanes.take_fresh(store, fresh, now, lease_until).await?;
        // Hand-offs that found the inbox full, leased by their ingest: given back before the
        // scan below, which then finds them like any other due delivery.
        let unclaimed = self.inbox.take_unclaimed();
        spilled += unclaimed.len();
        store.release(&unclaimed).await?;
        self.adapt_ingest_leases(context, taken, spilled);
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
        let now = context.clock.now();
        let hold_until = now + chrono_duration(context.settings.timeout + CLAIM_MARGIN);
        self.lanes.recorded(&finished.endpoint_id, &finished.delivery_id, finished.recorded, now, hold_until);
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

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
