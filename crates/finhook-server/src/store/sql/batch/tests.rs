//! The group commit's own tests on the embedded store (the shared store's are in the
//! integration suite, `tests/it/group_commit.rs`).

use chrono::Utc;
use finhook_core::flinks::ResponseType;
use finhook_core::ids::DeliveryId;
use finhook_core::secret::KeyHash;

use super::super::SqlStore;
use crate::store::queue::DeliveryQueue;
use crate::store::{IngestOutcome, InstanceId, Mode, NewInstance, NewMessage, Store, StoreError};

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
        response_type: ResponseType::Kyc.into(),
        login_id: Some("L".into()),
        request_id: None,
        tag: None,
        idempotency_key: None,
        body_sha256: format!("{n}"),
        payload: bytes::Bytes::from_static(b"{}"),
        now: Utc::now(),
    }
}

#[tokio::test]
async fn a_failing_write_does_not_take_its_batch_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, instance) = store_with_instance(&format!("sqlite://{}", dir.path().join("b.db").display())).await;
    // An attempt for a delivery that does not exist breaks a foreign key.
    let orphan = super::super::fixtures::delivered(DeliveryId::generate(), instance);
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

/// A batch that panics on the writer's thread takes none of its writes (its transaction
/// goes with the connection, which is closed, never pooled again), its callers hear that
/// their writes were not taken, and the writer goes on with the next batch.
#[tokio::test]
async fn a_batch_that_panics_takes_none_of_its_writes_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, instance) = store_with_instance(&format!("sqlite://{}", dir.path().join("p.db").display())).await;
    // All three are queued before the writer runs, so they share one batch.
    let (first, panicked, second) =
        tokio::join!(store.ingest(message(instance, 1)), store.writes.panic(), store.ingest(message(instance, 2)));
    assert!(matches!(first, Err(StoreError::WriterStopped)), "{first:?}");
    assert!(matches!(panicked, Err(StoreError::WriterStopped)), "{panicked:?}");
    assert!(matches!(second, Err(StoreError::WriterStopped)), "{second:?}");
    let after = store.ingest(message(instance, 3)).await;
    assert!(matches!(after, Ok(IngestOutcome::Created { .. })), "{after:?}");
    assert_eq!(store.stats(Utc::now()).await.expect("stats").messages, 1, "only the write after the panic");
}
