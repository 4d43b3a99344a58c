//! Group commit for the store's hot writes (ingests, attempt records), on either database.
//!
//! Every ingest and every attempt record needs its own durable commit, and a commit costs
//! an fsync (SQLite with `synchronous = FULL`, PostgreSQL with `fsync` and
//! `synchronous_commit` on): one at a time, the disk, not the CPU, sets the pace. Here the
//! writes queue to one task that applies whatever has queued up in a single transaction
//! and commits once, then answers every caller ([`apply_together`]: without savepoints
//! first, and only after a failed write again with a savepoint per write ([`settle`]), so
//! one write's error rolls back only that write). A caller still hears back only after its write is durable; under
//! load, one fsync covers many callbacks. The batch's attempt records enter the delivery
//! ledger in the same transaction (`ledger::chain_recorded`).

use std::sync::Arc;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::events::Tracking;
use super::messages::{ingest_on, ingest_statements, Subscriptions};
use super::payload_log::PayloadLog;
use super::queue::{record_on, record_statements};
use super::{ledger, sets};
use crate::store::db::{Backend, Conn, Pooled, Pools};
use crate::store::{AttemptResult, GroupCommitTotals, IngestOutcome, NewMessage, StoreError, StoreResult};
use on_writer::{each_on, session_on, together_on, Ended};
use totals::Totals;

/// The most writes one transaction takes; enough to amortise the fsync, small enough to
/// keep the writer lock short.
const MAX_BATCH: usize = 256;

/// One queued write: what to apply, and who to tell once it is committed (or not).
struct Write {
    job: Job,
    reply: Reply,
}

#[derive(Clone)]
enum Job {
    Ingest(NewMessage),
    Record(AttemptResult),
    /// A write that changes nothing of substance: proves the store can commit right now.
    Probe(i64),
    /// A write that panics as its batch is applied: what a bug in a write would do.
    #[cfg(test)]
    Panic,
}

impl Job {
    fn record(&self) -> Option<&AttemptResult> {
        match self {
            Job::Record(result) => Some(result),
            _ => None,
        }
    }
}

/// The queue into the group-commit task. The task ends at [`BatchWriter::close`], or when
/// the last handle is dropped, after committing and answering what was queued.
#[derive(Debug)]
pub(super) struct BatchWriter {
    queue: mpsc::UnboundedSender<Write>,
    state: Arc<WriterState>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl BatchWriter {
    /// `node` names this process in the leases its ingests write (see
    /// [`BatchWriter::lease_new_deliveries`]).
    /// `payload_log`: where an embedded store in a file keeps callback bodies.
    pub(super) fn spawn(pools: Pools, node: &str, payload_log: Option<Arc<PayloadLog>>) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let state = Arc::new(WriterState {
            node: node.to_string(),
            millis: AtomicI64::new(0),
            totals: Totals::default(),
            payload_log,
        });
        let task = tokio::spawn(run(pools, receiver, stop.clone(), state.clone()));
        Self { queue, state, stop, task: Mutex::new(Some(task)) }
    }

    /// On PostgreSQL, deliveries of ingests from now on are written leased to this node
    /// for `lease` from the ingest's time.
    pub(super) fn lease_new_deliveries(&self, lease: chrono::Duration) {
        self.state.millis.store(lease.num_milliseconds().max(0), Ordering::Relaxed);
    }

    /// The payload log the writer appends callback bodies to, if the store has one.
    pub(super) fn payload_log(&self) -> Option<&Arc<PayloadLog>> {
        self.state.payload_log.as_ref()
    }

    /// What the group-commit task has done since it started.
    pub(super) fn totals(&self) -> GroupCommitTotals {
        self.state.totals.snapshot()
    }

    /// Stops taking writes (later ones fail with [`StoreError::WriterStopped`]), commits and
    /// answers those already queued, and returns when the task has ended.
    pub(super) async fn close(&self) {
        self.stop.cancel();
        let task = self.task.lock().map(|mut task| task.take()).unwrap_or_default();
        if let Some(task) = task {
            if let Err(error) = task.await {
                tracing::error!(error = %error, "the group-commit task panicked");
            }
        }
    }

    pub(super) async fn ingest(&self, message: NewMessage) -> StoreResult<IngestOutcome> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Write { job: Job::Ingest(message), reply: Reply::Ingest(reply) })
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    pub(super) async fn record(&self, result: AttemptResult) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Write { job: Job::Record(result), reply: Reply::Done(reply) })
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Queues a write that panics when its batch is applied.
    #[cfg(test)]
    pub(super) async fn panic(&self) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Write { job: Job::Panic, reply: Reply::Done(reply) }).map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Commits a tiny write (the time of the probe in `settings`); `Ok` only if it is durable.
    pub(super) async fn probe(&self, now_ms: i64) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Write { job: Job::Probe(now_ms), reply: Reply::Done(reply) })
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// This node, how long the leases its ingests write last (0: none yet), the group
/// commit's running totals, and the payload log it appends to (SQLite in a file).
#[derive(Debug)]
struct WriterState {
    node: String,
    millis: AtomicI64,
    totals: Totals,
    payload_log: Option<Arc<PayloadLog>>,
}

impl WriterState {
    fn get(&self) -> Option<(&str, chrono::Duration)> {
        let millis = self.millis.load(Ordering::Relaxed);
        (millis > 0).then(|| (self.node.as_str(), chrono::Duration::milliseconds(millis)))
    }
}

async fn run(pools: Pools, receiver: mpsc::UnboundedReceiver<Write>, stop: CancellationToken, state: Arc<WriterState>) {
    // Shared with the SQLite session's thread, which takes the batches that queue while it
    // holds the writer; only one of the two reads it at a time.
    let queue = Arc::new(tokio::sync::Mutex::new(receiver));
    loop {
        let batch = {
            let mut receiver = queue.lock().await;
            let first = tokio::select! {
                biased;
                first = receiver.recv() => first,
                () = stop.cancelled() => {
                    // No new writes; what is already queued is still committed below.
                    receiver.close();
                    receiver.recv().await
                }
            };
            let Some(first) = first else { break };
            queued(&mut receiver, vec![first])
        };
        let connection = match pools.writer().await {
            Ok(connection) => connection,
            Err(error) => {
                fail_all(&Arc::new(error), Vec::new(), batch.into_iter());
                continue;
            }
        };
        let started = Instant::now();
        match session_on(connection, batch, &queue, &state).await {
            Ended::Idle | Ended::Panicked => {}
            Ended::Unsettled(connection, together) => settle(&pools, connection, together, &state).await,
        }
        Totals::add(&state.totals.busy_nanos, started.elapsed());
    }
}

/// `batch` with whatever else is queued, up to [`MAX_BATCH`] writes in all (without waiting).
fn queued(receiver: &mut mpsc::UnboundedReceiver<Write>, mut batch: Vec<Write>) -> Vec<Write> {
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(write) => batch.push(write),
            Err(_) => break,
        }
    }
    batch
}

/// Where a write's answer goes.
enum Reply {
    Ingest(oneshot::Sender<StoreResult<IngestOutcome>>),
    Done(oneshot::Sender<StoreResult<()>>),
}

/// What a write returns: an ingest's outcome, or nothing for the others.
type Applied = Option<IngestOutcome>;

impl Reply {
    /// Answers the caller. A caller that gave up waiting is no longer listening; nothing to
    /// do then.
    fn send(self, result: StoreResult<Applied>) {
        match self {
            // Only `Job::Ingest` is queued with `Reply::Ingest`, and it always returns an
            // outcome; `WriterStopped` would only ever mean a bug here, never a false `Ok`.
            Reply::Ingest(reply) => {
                drop(reply.send(result.and_then(|applied| applied.ok_or(StoreError::WriterStopped))))
            }
            Reply::Done(reply) => drop(reply.send(result.map(drop))),
        }
    }

    /// Tells the caller its write was not committed, for `cause`.
    fn fail(self, cause: &Arc<sqlx::Error>) {
        self.send(Err(StoreError::Commit(cause.clone())));
    }
}

/// A write's result, held until its batch is committed.
struct Outcome {
    reply: Reply,
    result: StoreResult<Applied>,
}

/// Settles a batch that did not commit in one transaction ([`apply_together`]), and
/// answers every caller.
///
/// If a write failed, that transaction was rolled back and the batch is applied again the
/// careful way ([`apply_each`]): each write in its own savepoint, so one write's error (a
/// foreign key, a full disk) undoes only that write and the others still commit.
async fn settle(pools: &Pools, mut connection: Pooled, mut together: Together, state: &Arc<WriterState>) {
    // A pooled connection the database dropped (a restart, a network cut) fails at `BEGIN`,
    // before anything was sent: the batch goes again on another connection, at most once
    // per connection the pool may hold, instead of answering 503 for a database that is
    // back. A failure after `BEGIN` is never retried here (a `COMMIT` that failed may have
    // committed).
    for _ in 0..=super::open::MAX_POOLED {
        let Together::NotBegun(cause, batch) = together else { break };
        if !connection_lost(&cause) {
            together = Together::NotBegun(cause, batch);
            break;
        }
        discard(connection).await;
        let fresh = match pools.writer().await {
            Ok(connection) => connection,
            Err(error) => return fail_all(&Arc::new(error), Vec::new(), batch.into_iter()),
        };
        let Some(again) = together_on(fresh, batch, state).await else { return };
        (connection, together) = again;
    }
    let batch = match together {
        Together::Committed(outcomes) => return answer(outcomes),
        Together::NotBegun(cause, batch) | Together::NotCommitted(cause, batch) => {
            discard(connection).await;
            return fail_all(&Arc::new(cause), Vec::new(), batch.into_iter());
        }
        Together::AWriteFailed(batch) => batch,
    };
    let outcomes = Vec::with_capacity(batch.len());
    let Some((connection, done, writes, outcomes)) = each_on(connection, batch.into_iter(), outcomes, state).await
    else {
        return;
    };
    match done {
        Ok(()) => answer(outcomes),
        Err(cause) => {
            discard(connection).await;
            fail_all(&Arc::new(cause), outcomes, writes);
        }
    }
}

/// Tells every caller of a committed batch how its write went.
fn answer(outcomes: Vec<Outcome>) {
    outcomes.into_iter().for_each(|outcome| outcome.reply.send(outcome.result));
}

/// Tells every caller of a batch that nothing of it was committed.
fn fail_all(cause: &Arc<sqlx::Error>, outcomes: Vec<Outcome>, writes: std::vec::IntoIter<Write>) {
    let count = outcomes.len() + writes.len();
    tracing::error!(error = %cause, writes = count, "a batch of store writes failed; none of them took effect");
    for outcome in outcomes {
        outcome.reply.fail(cause);
    }
    for write in writes {
        write.reply.fail(cause);
    }
}

/// How the one-transaction attempt at a batch ended.
enum Together {
    /// Committed: every write succeeded.
    Committed(Vec<Outcome>),
    /// A write failed; the transaction was rolled back and the batch is handed back whole.
    AWriteFailed(Vec<Write>),
    /// `BEGIN` failed: nothing was sent.
    NotBegun(sqlx::Error, Vec<Write>),
    /// `COMMIT` failed: nothing was committed (or, if the connection broke during it, the
    /// outcome is unknown), and trying each write alone would meet the same cause.
    NotCommitted(sqlx::Error, Vec<Write>),
}

/// The fast path: the whole batch in one transaction, on PostgreSQL the batch's ingests and
/// attempt records as sets ([`sets`]), on SQLite write by write on the writer's own handle
/// ([`on_writer`]). Each job is cloned for its run (a few strings and the payload, far
/// cheaper than a round trip) so the batch is still whole if it must be applied again
/// write by write ([`settle`]).
async fn apply_together(connection: &mut Conn<'_>, batch: Vec<Write>, state: &WriterState) -> Together {
    state.totals.batches.fetch_add(1, Ordering::Relaxed);
    state.totals.writes.fetch_add(u64::try_from(batch.len()).unwrap_or(u64::MAX), Ordering::Relaxed);
    if let Err(error) = execute(connection, begin(connection)).await {
        return Together::NotBegun(error, batch);
    }
    let jobs = batch.iter().map(|write| write.job.clone()).collect();
    let applied = match connection.backend() {
        Backend::Postgres => apply_set(connection, jobs, state.get()).await,
        Backend::Sqlite => apply_in_turn(connection, jobs).await,
    };
    let results = match applied {
        Ok(results) => results,
        Err(_) => {
            // Fails harmlessly when SQLite already rolled the transaction back itself;
            // if the connection were somehow still inside one, `apply_each`'s `BEGIN
            // IMMEDIATE` fails and the batch with it, so nothing is ever half applied.
            // PostgreSQL never ends a transaction behind the client's back: there a
            // failed `ROLLBACK` means a broken connection, and `BEGIN` fails on it too.
            let _ = execute(connection, "ROLLBACK").await;
            return Together::AWriteFailed(batch);
        }
    };
    // The bodies the rows name are durable before the rows are. If they cannot be, the
    // batch goes the careful way, where each ingest meets the log's error alone.
    if connection.sync_payloads().is_err() {
        let _ = execute(connection, "ROLLBACK").await;
        return Together::AWriteFailed(batch);
    }
    let committing = Instant::now();
    let committed = execute(connection, "COMMIT").await;
    Totals::add(&state.totals.commit_nanos, committing.elapsed());
    if let Err(error) = committed {
        return Together::NotCommitted(error, batch);
    }
    let outcomes =
        batch.into_iter().zip(results).map(|(write, applied)| Outcome { reply: write.reply, result: Ok(applied) });
    Together::Committed(outcomes.collect())
}

/// Applies `jobs` inside the open transaction, one after the other; their results in order.
/// On the writer's own handle (`on_writer`, `Conn::Direct`) a statement costs no hop, so each write's
/// statements run as soon as they are built (before, through sqlx's thread, they went eight
/// writes to a multi-statement query). A record's ledger entry runs with the record.
async fn apply_in_turn(connection: &mut Conn<'_>, jobs: Vec<Job>) -> StoreResult<Vec<Applied>> {
    let mut subscriptions = Subscriptions::default();
    // The batch's LoginIds, counted in one read for their `webhook-sequence`s.
    let logins: Vec<(crate::store::InstanceId, String)> = jobs
        .iter()
        .filter_map(|job| match job {
            Job::Ingest(message) => message.login_id.clone().map(|login| (message.instance_id, login)),
            _ => None,
        })
        .collect();
    subscriptions.sequences.read(connection, &logins).await?;
    let mut results = Vec::with_capacity(jobs.len());
    let recorded: Vec<&AttemptResult> = jobs.iter().filter_map(Job::record).collect();
    let mut chaining = ledger::Chaining::start(connection, &recorded).await?;
    let tracking = Tracking::of(&recorded);
    drop(recorded);
    for job in jobs {
        match job {
            Job::Record(result) => {
                let entry = chaining.as_mut().map(|chaining| chaining.entry(&result)).transpose()?;
                let mut statements = record_statements(result);
                statements.extend(entry);
                connection.execute_all(statements).await?;
                results.push(None);
            }
            Job::Ingest(message) if message.idempotency_key.is_none() => {
                let (statements, outcome) = ingest_statements(connection, &mut subscriptions, message).await?;
                connection.execute_all(statements).await?;
                results.push(Some(outcome));
            }
            job => results.push(apply_job(connection, &mut subscriptions, job).await?),
        }
    }
    if let Some(chaining) = chaining {
        connection.execute_all(chaining.finish()).await?;
    }
    write_sequences(connection, &mut subscriptions).await?;
    tracking.apply(connection).await?;
    Ok(results)
}

/// Applies `jobs` inside the open transaction as sets; their results in order. Ingests without an
/// idempotency key and the first record of each delivery go in sets; an ingest with a key
/// (it may replay one before it, even one in this batch), a second record of a delivery
/// and a probe are applied alone, after the sets and in their order.
async fn apply_set(
    connection: &mut Conn<'_>,
    jobs: Vec<Job>,
    lease: Option<(&str, chrono::Duration)>,
) -> StoreResult<Vec<Applied>> {
    let mut results: Vec<Applied> = vec![None; jobs.len()];
    // The records' ledger entries, in the order the records were queued.
    let recorded: Vec<&AttemptResult> = jobs.iter().filter_map(Job::record).collect();
    let chained = ledger::chain_writes(connection, &recorded).await?;
    let tracking = Tracking::of(&recorded);
    drop(recorded);
    let (mut ingests, mut records, mut alone) = (Vec::new(), Vec::new(), Vec::new());
    for (n, job) in jobs.into_iter().enumerate() {
        match job {
            Job::Ingest(message) if message.idempotency_key.is_none() => ingests.push((n, message)),
            Job::Record(result) => records.push((n, result)),
            job => alone.push((n, job)),
        }
    }
    let (records, again) = sets::first_of_each(records);
    alone.extend(again.into_iter().map(|(n, result)| (n, Job::Record(result))));
    alone.sort_by_key(|(n, _)| *n);
    let mut subscriptions = Subscriptions::default();
    let (places, messages): (Vec<usize>, Vec<NewMessage>) = ingests.into_iter().unzip();
    let (outcomes, ingested) = sets::ingest_set(connection, &mut subscriptions, messages, lease).await?;
    for (n, outcome) in places.into_iter().zip(outcomes) {
        results[n] = Some(outcome);
    }
    let records: Vec<AttemptResult> = records.into_iter().map(|(_, result)| result).collect();
    // The ingests, the first record of each delivery and the ledger: one statement.
    ingested.and(sets::record_set(&records)).and(chained).run(connection).await?;
    for (n, job) in alone {
        results[n] = apply_job(connection, &mut subscriptions, job).await?;
    }
    write_sequences(connection, &mut subscriptions).await?;
    tracking.apply(connection).await?;
    Ok(results)
}

/// Applies one job on `connection`, inside whatever transaction or savepoint is open.
async fn apply_job(conn: &mut Conn<'_>, subscriptions: &mut Subscriptions, job: Job) -> StoreResult<Applied> {
    match job {
        Job::Ingest(message) => ingest_on(conn, subscriptions, message).await.map(Some),
        Job::Record(result) => record_on(conn, result).await.map(|()| None),
        Job::Probe(now_ms) => probe_on(conn, now_ms).await.map(|()| None),
        #[cfg(test)]
        Job::Panic => panic!("a write panicked on purpose"),
    }
}

/// The careful path of [`settle`], write by write in savepoints. Transaction control is
/// plain SQL on a connection this task holds, not sqlx's `Transaction`. sqlx counts the
/// nesting depth on its side; when SQLite rolls a whole transaction back by itself (it may
/// on `SQLITE_FULL`, `SQLITE_IOERR`, `SQLITE_BUSY` or `SQLITE_NOMEM`), the savepoint's
/// `ROLLBACK TO` fails ("no such savepoint"), sqlx's count is never decremented, and from
/// then on its `begin()` issues `SAVEPOINT` where `BEGIN` was meant and its `commit()` a
/// `RELEASE` of a savepoint SQLite never had. Writes then lived in a transaction that was
/// never committed while each caller was told its write was durable (issue 7: after a full
/// disk, finhook answered 202 for callbacks it never stored, even once the space came
/// back).
///
/// So here: `BEGIN IMMEDIATE` fails if the connection is still inside a transaction (the
/// check that its state is clean before each batch); a failed `ROLLBACK TO` means the
/// transaction is gone and fails the whole batch; and after any failure the caller closes
/// the connection rather than pooling it, so the next batch starts on a fresh one.
///
/// `Err` means nothing of the batch was committed. Writes not yet taken from `writes` when
/// it fails, and the outcomes so far, are the caller's to answer.
async fn apply_each(
    connection: &mut Conn<'_>,
    writes: &mut std::vec::IntoIter<Write>,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), sqlx::Error> {
    execute(connection, begin(connection)).await?;
    let mut subscriptions = Subscriptions::default();
    let mut recorded = Vec::new();
    for write in writes.by_ref() {
        if let Err(error) = execute(connection, "SAVEPOINT write").await {
            outcomes.push(Outcome { reply: write.reply, result: Err(StoreError::WriterStopped) });
            return Err(error);
        }
        let record = write.job.record().cloned();
        let result = match apply_job(connection, &mut subscriptions, write.job).await {
            // The numbers it gave, in its own savepoint; its body durable before its row.
            Ok(applied) => match write_sequences(connection, &mut subscriptions).await {
                Ok(()) => connection.sync_payloads().map(|()| applied),
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        if let (Ok(_), Some(record)) = (&result, record) {
            recorded.push(record);
        }
        if result.is_err() {
            // Undo only this write. If SQLite already rolled the whole transaction back,
            // the savepoint is gone and so is every write before this one: the batch
            // failed, and its cause is this write's own error ("database or disk is full").
            // What it numbered is undone with it: count again from what stands.
            subscriptions.sequences.forget();
            if let Err(rollback) = execute(connection, "ROLLBACK TO write").await {
                outcomes.push(Outcome { reply: write.reply, result: Err(StoreError::WriterStopped) });
                return Err(match result {
                    Err(StoreError::Database(own)) => own,
                    _ => rollback,
                });
            }
        }
        let released = execute(connection, "RELEASE write").await;
        outcomes.push(Outcome { reply: write.reply, result });
        released?;
    }
    // The records that were written go into the ledger and the endpoints' runs of
    // failures with them, or nothing commits.
    let records: Vec<&AttemptResult> = recorded.iter().collect();
    let tracking = Tracking::of(&records);
    ledger::chain_recorded(connection, &records).await.map_err(|error| match error {
        StoreError::Database(cause) => cause,
        other => sqlx::Error::Protocol(format!("could not chain the batch's attempts into the ledger: {other}")),
    })?;
    tracking.apply(connection).await.map_err(|error| match error {
        StoreError::Database(cause) => cause,
        other => sqlx::Error::Protocol(format!("could not track the batch's failed attempts: {other}")),
    })?;
    execute(connection, "COMMIT").await
}

/// Stores the last `webhook-sequence` numbers given since the last call.
async fn write_sequences(connection: &mut Conn<'_>, subscriptions: &mut Subscriptions) -> StoreResult<()> {
    let statements = subscriptions.sequences.written();
    if !statements.is_empty() {
        connection.execute_all(statements).await?;
    }
    Ok(())
}

async fn execute(connection: &mut Conn<'_>, statement: &'static str) -> Result<(), sqlx::Error> {
    connection.raw(statement).await
}

/// How a batch opens its transaction. On SQLite `IMMEDIATE` takes the write lock at once
/// and fails if the connection is still inside a transaction (the check that it is clean).
fn begin(connection: &Conn<'_>) -> &'static str {
    match connection.backend() {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    }
}

async fn probe_on(conn: &mut crate::store::db::Conn<'_>, now_ms: i64) -> StoreResult<()> {
    conn.execute(super::probe_sql(now_ms)).await?;
    Ok(())
}

/// Rolls back whatever may be open and closes the connection instead of pooling it.
/// The connection itself is gone (closed by the database or the network), not the
/// statement refused.
fn connection_lost(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed)
}

async fn discard(mut connection: Pooled) {
    // Fails harmlessly with "no transaction is active" when SQLite already rolled back.
    let _ = execute(&mut connection.conn(), "ROLLBACK").await;
    connection.close_on_drop();
}

mod on_writer;
#[cfg(test)]
mod tests;
mod totals;
