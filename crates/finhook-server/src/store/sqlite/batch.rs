//! Group commit for the embedded store's hot writes.
//!
//! Every ingest and every attempt record needs its own durable commit, and with
//! `synchronous = FULL` a commit costs an fsync: one at a time, the disk, not the CPU, sets
//! the pace. Here the writes queue to one task that applies whatever has queued up in a
//! single transaction, each write inside its own savepoint (so one write's error rolls back
//! only that write), then commits once and answers every caller. A caller still hears back
//! only after its write is durable; under load, one fsync covers many callbacks.

use sqlx::{Acquire, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::ingest_on;
use super::queue::record_on;
use crate::store::{AttemptResult, IngestOutcome, NewMessage, StoreError, StoreResult};

/// The most writes one transaction takes; enough to amortise the fsync, small enough to
/// keep the writer lock short.
const MAX_BATCH: usize = 256;

enum Write {
    Ingest(NewMessage, oneshot::Sender<StoreResult<IngestOutcome>>),
    Record(AttemptResult, oneshot::Sender<StoreResult<()>>),
}

/// The queue into the group-commit task; the task ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct BatchWriter {
    queue: mpsc::UnboundedSender<Write>,
}

impl BatchWriter {
    pub(super) fn spawn(pool: SqlitePool) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, receiver));
        Self { queue }
    }

    pub(super) async fn ingest(&self, message: NewMessage) -> StoreResult<IngestOutcome> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Write::Ingest(message, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) async fn record(&self, result: AttemptResult) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Write::Record(result, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Commit("the store's writer dropped the write before committing it; nothing was stored".to_string())
}

async fn run(pool: SqlitePool, mut receiver: mpsc::UnboundedReceiver<Write>) {
    while let Some(first) = receiver.recv().await {
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

/// A write's outcome, held until the batch is committed.
enum Outcome {
    Ingest(oneshot::Sender<StoreResult<IngestOutcome>>, StoreResult<IngestOutcome>),
    Record(oneshot::Sender<StoreResult<()>>, StoreResult<()>),
}

impl Outcome {
    fn succeeded(&self) -> bool {
        match self {
            Outcome::Ingest(_, result) => result.is_ok(),
            Outcome::Record(_, result) => result.is_ok(),
        }
    }

    /// Answers the caller; after a failed commit, every write of the batch failed.
    fn answer(self, commit_error: Option<&str>) {
        let failed = |detail: &str| StoreError::Commit(detail.to_string());
        // A caller that gave up waiting is no longer listening; nothing to do then.
        match (self, commit_error) {
            (Outcome::Ingest(reply, _), Some(detail)) => drop(reply.send(Err(failed(detail)))),
            (Outcome::Record(reply, _), Some(detail)) => drop(reply.send(Err(failed(detail)))),
            (Outcome::Ingest(reply, result), None) => drop(reply.send(result)),
            (Outcome::Record(reply, result), None) => drop(reply.send(result)),
        }
    }
}

async fn apply(pool: &SqlitePool, batch: Vec<Write>) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let committed: Result<(), String> = async {
        let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
        for write in batch {
            let mut savepoint = tx.begin().await.map_err(|e| e.to_string())?;
            let outcome = match write {
                Write::Ingest(message, reply) => Outcome::Ingest(reply, ingest_on(&mut savepoint, message).await),
                Write::Record(result, reply) => Outcome::Record(reply, record_on(&mut savepoint, result).await),
            };
            if outcome.succeeded() {
                savepoint.commit().await.map_err(|e| e.to_string())?;
            } else {
                savepoint.rollback().await.map_err(|e| e.to_string())?;
            }
            outcomes.push(outcome);
        }
        tx.commit().await.map_err(|e| e.to_string())
    }
    .await;
    let error = committed.err();
    if let Some(detail) = &error {
        tracing::error!(error = %detail, writes = outcomes.len(), "a batch of store writes failed; none of them took effect");
    }
    for outcome in outcomes {
        outcome.answer(error.as_deref());
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use finhook_core::flinks::ResponseType;
    use finhook_core::ids::{AttemptId, DeliveryId};
    use finhook_core::secret::KeyHash;

    use super::super::SqliteStore;
    use crate::store::queue::DeliveryQueue;
    use crate::store::{
        AttemptRecord, AttemptResult, DeliveryStatus, IngestOutcome, Mode, NewInstance, NewMessage, Store,
    };

    #[tokio::test]
    async fn a_failing_write_does_not_take_its_batch_down() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            SqliteStore::open(&format!("sqlite://{}", dir.path().join("b.db").display()), None).await.expect("open");
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
        let message = |n: u8| NewMessage {
            instance_id: instance.id,
            response_type: ResponseType::Kyc,
            login_id: Some("L".into()),
            request_id: None,
            tag: None,
            idempotency_key: None,
            body_sha256: format!("{n}"),
            payload: b"{}".to_vec(),
            now: Utc::now(),
        };
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
                succeeded: true,
            },
            next_attempt_at: None,
            new_status: DeliveryStatus::Delivered,
        };
        // All three are queued before the writer runs, so they share one transaction.
        let (first, broken, second) =
            tokio::join!(store.ingest(message(1)), store.record_attempt(orphan), store.ingest(message(2)));
        assert!(matches!(first, Ok(IngestOutcome::Created { .. })), "{first:?}");
        assert!(broken.is_err());
        assert!(matches!(second, Ok(IngestOutcome::Created { .. })), "{second:?}");
        let stats = store.stats(Utc::now()).await.expect("stats");
        assert_eq!(stats.messages, 2);
    }
}
