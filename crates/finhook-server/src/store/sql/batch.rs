//! Group commit for the embedded (SQLite) store's hot writes.
//!
//! Every ingest and every attempt record needs its own durable commit, and with
//! `synchronous = FULL` a commit costs an fsync: one at a time, the disk, not the CPU, sets
//! the pace. Here the writes queue to one task that applies whatever has queued up in a
//! single transaction, each write inside its own savepoint (so one write's error rolls back
//! only that write), then commits once and answers every caller. A caller still hears back
//! only after its write is durable; under load, one fsync covers many callbacks.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::messages::ingest_on;
use super::queue::record_on;
use crate::store::db::Conn;
use crate::store::{AttemptResult, IngestOutcome, NewMessage, StoreError, StoreResult};

/// The most writes one transaction takes; enough to amortise the fsync, small enough to
/// keep the writer lock short.
const MAX_BATCH: usize = 256;

enum Write {
    Ingest(NewMessage, oneshot::Sender<StoreResult<IngestOutcome>>),
    Record(AttemptResult, oneshot::Sender<StoreResult<()>>),
    /// A write that changes nothing of substance: proves the store can commit right now.
    Probe(i64, oneshot::Sender<StoreResult<()>>),
}

/// The queue into the group-commit task. The task ends at [`BatchWriter::close`], or when
/// the last handle is dropped, after committing and answering what was queued.
#[derive(Debug)]
pub(super) struct BatchWriter {
    queue: mpsc::UnboundedSender<Write>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl BatchWriter {
    pub(super) fn spawn(pool: SqlitePool) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(pool, receiver, stop.clone()));
        Self { queue, stop, task: Mutex::new(Some(task)) }
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
        self.queue.send(Write::Ingest(message, reply)).map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    pub(super) async fn record(&self, result: AttemptResult) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Write::Record(result, reply)).map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Commits a tiny write (the time of the probe in `settings`); `Ok` only if it is durable.
    pub(super) async fn probe(&self, now_ms: i64) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Write::Probe(now_ms, reply)).map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(pool: SqlitePool, mut receiver: mpsc::UnboundedReceiver<Write>, stop: CancellationToken) {
    loop {
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
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        apply(&pool, batch).await;
    }
}

/// Where a write's answer goes.
enum Reply {
    Ingest(oneshot::Sender<StoreResult<IngestOutcome>>),
    Done(oneshot::Sender<StoreResult<()>>),
}

impl Reply {
    /// Tells the caller its write was not committed, for `cause`. A caller that gave up
    /// waiting is no longer listening; nothing to do then.
    fn fail(self, cause: &Arc<sqlx::Error>) {
        let failed = || StoreError::Commit(cause.clone());
        match self {
            Reply::Ingest(reply) => drop(reply.send(Err(failed()))),
            Reply::Done(reply) => drop(reply.send(Err(failed()))),
        }
    }
}

impl Write {
    fn into_reply(self) -> Reply {
        match self {
            Write::Ingest(_, reply) => Reply::Ingest(reply),
            Write::Record(_, reply) | Write::Probe(_, reply) => Reply::Done(reply),
        }
    }
}

/// A write's outcome, held until the batch is committed.
enum Outcome {
    Ingest(oneshot::Sender<StoreResult<IngestOutcome>>, StoreResult<IngestOutcome>),
    Done(oneshot::Sender<StoreResult<()>>, StoreResult<()>),
}

impl Outcome {
    fn failed(&self) -> bool {
        match self {
            Outcome::Ingest(_, result) => result.is_err(),
            Outcome::Done(_, result) => result.is_err(),
        }
    }

    /// Answers the caller once the batch is committed.
    fn answer(self) {
        match self {
            Outcome::Ingest(reply, result) => drop(reply.send(result)),
            Outcome::Done(reply, result) => drop(reply.send(result)),
        }
    }

    /// The reply, and the database error if that is why this write failed.
    fn into_failure(self) -> (Reply, Option<sqlx::Error>) {
        match self {
            Outcome::Ingest(reply, Err(StoreError::Database(error))) => (Reply::Ingest(reply), Some(error)),
            Outcome::Done(reply, Err(StoreError::Database(error))) => (Reply::Done(reply), Some(error)),
            Outcome::Ingest(reply, _) => (Reply::Ingest(reply), None),
            Outcome::Done(reply, _) => (Reply::Done(reply), None),
        }
    }
}

/// Applies one batch in one transaction and answers every caller.
///
/// Transaction control is plain SQL on a connection this task holds, not sqlx's
/// `Transaction`. sqlx counts the nesting depth on its side; when SQLite rolls a whole
/// transaction back by itself (it may on `SQLITE_FULL`, `SQLITE_IOERR`, `SQLITE_BUSY` or
/// `SQLITE_NOMEM`), the savepoint's `ROLLBACK TO` fails ("no such savepoint"), sqlx's count
/// is never decremented, and from then on its `begin()` issues `SAVEPOINT` where `BEGIN`
/// was meant and its `commit()` a `RELEASE` of a savepoint SQLite never had. Writes then
/// lived in a transaction that was never committed while each caller was told its write
/// was durable (issue 7: after a full disk, finhook answered 202 for callbacks it never
/// stored, even once the space came back).
///
/// So here: `BEGIN IMMEDIATE` fails if the connection is still inside a transaction (the
/// check that its state is clean before each batch); a failed `ROLLBACK TO` means the
/// transaction is gone and fails the whole batch; and after any failure the connection is
/// closed rather than pooled, so the next batch starts on a fresh one.
async fn apply(pool: &SqlitePool, batch: Vec<Write>) {
    let mut writes = batch.into_iter();
    let mut outcomes = Vec::with_capacity(writes.len());
    let result = match pool.acquire().await {
        Ok(mut connection) => {
            let result = apply_on(&mut connection, &mut writes, &mut outcomes).await;
            if result.is_err() {
                discard(connection).await;
            }
            result
        }
        Err(error) => Err(error),
    };
    let cause = match result {
        Ok(()) => {
            outcomes.into_iter().for_each(Outcome::answer);
            return;
        }
        Err(cause) => Arc::new(cause),
    };
    let count = outcomes.len() + writes.len();
    tracing::error!(error = %cause, writes = count, "a batch of store writes failed; none of them took effect");
    for outcome in outcomes {
        outcome.into_failure().0.fail(&cause);
    }
    for write in writes {
        write.into_reply().fail(&cause);
    }
}

/// The body of [`apply`]: `Err` means nothing of the batch was committed. Writes not yet
/// taken from `writes` when it fails are the caller's to answer.
async fn apply_on(
    connection: &mut SqliteConnection,
    writes: &mut std::vec::IntoIter<Write>,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), sqlx::Error> {
    execute(connection, "BEGIN IMMEDIATE").await?;
    for write in writes.by_ref() {
        if let Err(error) = execute(connection, "SAVEPOINT write").await {
            outcomes.push(match write.into_reply() {
                Reply::Ingest(reply) => Outcome::Ingest(reply, Err(StoreError::WriterStopped)),
                Reply::Done(reply) => Outcome::Done(reply, Err(StoreError::WriterStopped)),
            });
            return Err(error);
        }
        let outcome = match write {
            Write::Ingest(message, reply) => {
                Outcome::Ingest(reply, ingest_on(&mut Conn::Sqlite(connection), message).await)
            }
            Write::Record(result, reply) => {
                Outcome::Done(reply, record_on(&mut Conn::Sqlite(connection), result).await)
            }
            Write::Probe(now_ms, reply) => Outcome::Done(reply, probe_on(&mut Conn::Sqlite(connection), now_ms).await),
        };
        if outcome.failed() {
            // Undo only this write. If SQLite already rolled the whole transaction back,
            // the savepoint is gone and so is every write before this one: the batch
            // failed, and its cause is this write's own error ("database or disk is full").
            if let Err(rollback) = execute(connection, "ROLLBACK TO write").await {
                let (reply, own) = outcome.into_failure();
                outcomes.push(match reply {
                    Reply::Ingest(reply) => Outcome::Ingest(reply, Err(StoreError::WriterStopped)),
                    Reply::Done(reply) => Outcome::Done(reply, Err(StoreError::WriterStopped)),
                });
                return Err(own.unwrap_or(rollback));
            }
        }
        let released = execute(connection, "RELEASE write").await;
        outcomes.push(outcome);
        released?;
    }
    execute(connection, "COMMIT").await
}

async fn execute(connection: &mut SqliteConnection, statement: &'static str) -> Result<(), sqlx::Error> {
    sqlx::Executor::execute(&mut *connection, sqlx::raw_sql(statement)).await.map(drop)
}

async fn probe_on(conn: &mut Conn<'_>, now_ms: i64) -> StoreResult<()> {
    conn.execute(super::probe_sql(now_ms)).await?;
    Ok(())
}

/// Rolls back whatever may be open and closes the connection instead of pooling it.
async fn discard(mut connection: PoolConnection<Sqlite>) {
    // Fails harmlessly with "no transaction is active" when SQLite already rolled back.
    let _ = execute(&mut connection, "ROLLBACK").await;
    connection.close_on_drop();
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use finhook_core::flinks::ResponseType;
    use finhook_core::ids::{AttemptId, DeliveryId};
    use finhook_core::secret::KeyHash;

    use super::super::SqlStore;
    use crate::store::queue::DeliveryQueue;
    use crate::store::{
        AttemptRecord, AttemptResult, DeliveryStatus, IngestOutcome, InstanceId, Mode, NewInstance, NewMessage, Store,
        StoreError,
    };

    /// A new embedded store at `url` with one instance.
    async fn store_with_instance(url: &str) -> (SqlStore, InstanceId) {
        let store = SqlStore::open_sqlite(url, None).await.expect("open");
        let instance = store
            .create_instance(NewInstance {
                name: "acme".into(),
                customer_id: "c".into(),
                mode: Mode::Live,
                api_key_hash: KeyHash::of("k"),
                now: Utc::now(),
            })
            .await
            .expect("instance");
        (store, instance.id)
    }

    fn message(instance_id: InstanceId, n: u8) -> NewMessage {
        NewMessage {
            instance_id,
            response_type: ResponseType::Kyc,
            login_id: Some("L".into()),
            request_id: None,
            tag: None,
            idempotency_key: None,
            body_sha256: format!("{n}"),
            payload: b"{}".to_vec(),
            now: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_failing_write_does_not_take_its_batch_down() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, instance) = store_with_instance(&format!("sqlite://{}", dir.path().join("b.db").display())).await;
        // An attempt for a delivery that does not exist breaks a foreign key.
        let orphan = AttemptResult {
            delivery_id: DeliveryId::generate(),
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
        };
        // All three are queued before the writer runs, so they share one transaction.
        let (first, broken, second) = tokio::join!(
            store.ingest(message(instance, 1)),
            store.record_attempt(orphan),
            store.ingest(message(instance, 2))
        );
        assert!(matches!(first, Ok(IngestOutcome::Created { .. })), "{first:?}");
        assert!(broken.is_err());
        assert!(matches!(second, Ok(IngestOutcome::Created { .. })), "{second:?}");
        let stats = store.stats(Utc::now()).await.expect("stats");
        assert_eq!(stats.messages, 2);
    }

    #[tokio::test]
    async fn close_commits_what_was_queued_then_refuses_writes_and_unlocks_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let (store, instance) = store_with_instance(&url).await;
        // The ingests are queued before `close` runs (join polls them first), so they are
        // committed and answered; the write after it is refused.
        let (first, second, ()) =
            tokio::join!(store.ingest(message(instance, 1)), store.ingest(message(instance, 2)), store.close());
        assert!(matches!(first, Ok(IngestOutcome::Created { .. })), "{first:?}");
        assert!(matches!(second, Ok(IngestOutcome::Created { .. })), "{second:?}");
        let late = store.ingest(message(instance, 3)).await;
        assert!(matches!(late, Err(StoreError::WriterStopped)), "{late:?}");
        // `store` is still alive, but the file is free for the next process.
        let reopened = SqlStore::open_sqlite(&url, None).await.expect("reopen after close");
        assert_eq!(reopened.stats(Utc::now()).await.expect("stats").messages, 2);
    }
}
