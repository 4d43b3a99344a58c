//! The group commit, on both stores: a batch that mixes plain ingests, keyed ingests (one
//! key twice, and once with another body) and attempt records (one delivery recorded
//! twice) commits each write exactly as if it had been alone; one failing write of a batch
//! is rolled back alone.

use finhook_core::flinks::ResponseType;
use finhook_core::ids::{AttemptId, DeliveryId, MessageId};
use finhook_core::retry::RetryPolicy;
use finhook_core::secret::{EndpointSecret, KeyHash};
use finhook_server::store::ledger::LedgerStore;
use finhook_server::store::queue::DeliveryQueue;
use finhook_server::store::sql::SqlStore;
use finhook_server::store::*;

use crate::helpers::*;

#[tokio::test]
async fn a_mixed_batch_applies_each_write_as_if_alone_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("batch.db").display());
    mixed_batch(SqlStore::open_sqlite(&url, None).await.expect("open")).await;
}

#[tokio::test]
async fn a_mixed_batch_applies_each_write_as_if_alone_on_the_shared_store() {
    let (sealing, _) = finhook_core::seal::SealingKey::generate();
    mixed_batch(SqlStore::open_postgres(&postgres_database().await, sealing).await.expect("open")).await;
}

fn message(instance_id: InstanceId, body: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        instance_id,
        response_type: ResponseType::Kyc.into(),
        login_id: Some(format!("login-{body}")),
        request_id: None,
        tag: Some("t".into()),
        idempotency_key: key.map(str::to_string),
        body_sha256: finhook_core::secret::hex(&<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes())),
        payload: bytes::Bytes::copy_from_slice(body.as_bytes()),
        now: t0(),
    }
}

fn attempt(
    instance: InstanceId,
    message: &MessageId,
    delivery: &DeliveryId,
    number: u32,
    delivered: bool,
) -> AttemptResult {
    AttemptResult {
        delivery_id: delivery.clone(),
        endpoint_id: finhook_core::ids::EndpointId::generate(),
        ledger: LedgerSource {
            instance_id: instance,
            message_id: message.clone(),
            body_sha256: "ab".repeat(32),
            endpoint_url: "https://hooks.example.com/flinks".into(),
        },
        attempt: AttemptRecord {
            id: AttemptId::generate(),
            attempt_number: number,
            started_at: t0() + chrono::Duration::seconds(i64::from(number)),
            latency_ms: 3,
            status_code: Some(if delivered { 200 } else { 503 }),
            error_class: None,
            error_detail: (!delivered).then(|| "503".to_string()),
            response_excerpt: Some("ok".into()),
            response_bytes: Some(2),
            succeeded: delivered,
        },
        next_attempt_at: (!delivered).then(|| t0() + chrono::Duration::minutes(30)),
        new_status: if delivered { DeliveryStatus::Delivered } else { DeliveryStatus::Pending },
    }
}

fn created(outcome: &StoreResult<IngestOutcome>) -> (MessageId, Vec<DeliveryId>) {
    match outcome {
        Ok(IngestOutcome::Created { message_id, deliveries }) => {
            (message_id.clone(), deliveries.iter().map(|d| d.id.clone()).collect())
        }
        other => panic!("expected a new message, got {other:?}"),
    }
}

/// A new instance in `store`.
async fn acme(store: &SqlStore) -> InstanceId {
    named(store, "acme").await
}

/// A new instance called `name` in `store`.
async fn named(store: &SqlStore, name: &str) -> InstanceId {
    let instance = NewInstance {
        name: name.into(),
        customer_id: format!("c-{name}"),
        mode: Mode::Live,
        api_key_hash: KeyHash::of(name),
        now: t0(),
    };
    store.create_instance(instance).await.expect("instance").id
}

/// An enabled endpoint of `instance` at `url`, taking every callback.
async fn endpoint(store: &SqlStore, instance: InstanceId, url: &str) {
    let endpoint = NewEndpoint {
        url: url.into(),
        description: None,
        event_types: None,
        retry: RetryPolicy::default(),
        success: SuccessRule::Exactly200,
        enabled: true,
        signing: Signing::Hmac,
        client_identity: None,
        ordering: DeliveryOrder::None,
        secret: EndpointSecret::generate(),
        now: t0(),
    };
    store.create_endpoint(instance, endpoint).await.expect("endpoint");
}

#[tokio::test]
async fn a_batch_of_several_instances_and_more_rows_than_a_statement_takes_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("batch.db").display());
    wide_batch(SqlStore::open_sqlite(&url, None).await.expect("open")).await;
}

#[tokio::test]
async fn a_batch_of_several_instances_and_more_rows_than_a_statement_takes_on_the_shared_store() {
    let (sealing, _) = finhook_core::seal::SealingKey::generate();
    wide_batch(SqlStore::open_postgres(&postgres_database().await, sealing).await.expect("open")).await;
}

/// One batch of 256 ingests over three instances, one of them with six endpoints: 1,184
/// deliveries, more rows than one statement of the shared store carries (it then
/// writes each table in chunks), and each instance's stored bytes counted apart.
async fn wide_batch(store: SqlStore) {
    let (wide, narrow, silent) =
        (named(&store, "wide").await, named(&store, "narrow").await, named(&store, "silent").await);
    for n in 0..6 {
        endpoint(&store, wide, &format!("https://wide-{n}.example/")).await;
    }
    endpoint(&store, narrow, "https://narrow.example/").await;
    // Queued before the writer runs (one runtime thread), so they share one transaction.
    let to = |n: usize| match n % 8 {
        0 => narrow,
        1 => silent,
        _ => wide,
    };
    let bodies: Vec<String> = (0..256).map(|n| format!("body-{n:03}")).collect();
    let outcomes = futures_util::future::join_all(
        bodies.iter().enumerate().map(|(n, body)| store.ingest(message(to(n), body, None))),
    )
    .await;
    let mut deliveries = 0;
    for (n, outcome) in outcomes.iter().enumerate() {
        let (id, ids) = created(outcome);
        let expected = [1, 0, 6, 6, 6, 6, 6, 6][n % 8];
        assert_eq!(ids.len(), expected, "callback {n}");
        deliveries += ids.len();
        let stored = store.message(to(n), &id).await.expect("read").expect("stored");
        assert_eq!(stored.payload, bodies[n].as_bytes());
        assert_eq!(stored.deliveries.len(), expected);
    }
    assert_eq!(deliveries, 32 + 192 * 6, "over a thousand deliveries");
    for (instance, name, count) in [(wide, "wide", 192), (narrow, "narrow", 32), (silent, "silent", 32)] {
        let stored = store.instance_by_name(name).await.expect("read").expect("instance");
        assert_eq!(stored.id, instance);
        assert_eq!(stored.stored_bytes, count * "body-000".len() as u64, "{name}");
    }
    assert_eq!(store.pending_deliveries().await.expect("count"), 1184);
    store.close().await;
}

/// On PostgreSQL: one write of a batch that breaks a constraint is rolled back alone
/// (PostgreSQL aborts the whole transaction on an error, so the batch is applied again with
/// a savepoint per write), and the others are committed and answered. (The embedded
/// store's case is a unit test of `store::sql::batch`.)
#[tokio::test]
async fn a_failing_write_does_not_take_its_batch_down_on_the_shared_store() {
    let (sealing, _) = finhook_core::seal::SealingKey::generate();
    let store = SqlStore::open_postgres(&postgres_database().await, sealing).await.expect("open");
    let instance = acme(&store).await;
    // An attempt for a delivery that does not exist breaks a foreign key.
    let orphan = attempt(instance, &MessageId::generate(), &DeliveryId::generate(), 1, true);
    // All three are queued before the writer runs, so they share one transaction.
    let (first, broken, second) = tokio::join!(
        store.ingest(message(instance, "1", None)),
        store.record_attempt(orphan),
        store.ingest(message(instance, "2", None))
    );
    assert!(matches!(first, Ok(IngestOutcome::Created { .. })), "{first:?}");
    assert!(broken.is_err(), "{broken:?}");
    assert!(matches!(second, Ok(IngestOutcome::Created { .. })), "{second:?}");
    assert_eq!(store.stats(t0()).await.expect("stats").messages, 2);
    store.close().await;
}

async fn mixed_batch(store: SqlStore) {
    let instance = acme(&store).await;
    for url in ["https://a.example/", "https://b.example/"] {
        endpoint(&store, instance, url).await;
    }

    // Queued before the writer runs (the test's runtime has one thread, and `join!` polls
    // each future up to its wait for the answer), so all six share one transaction.
    let (plain_a, keyed, plain_b, replay, reused, plain_c) = tokio::join!(
        store.ingest(message(instance, "a", None)),
        store.ingest(message(instance, "k", Some("key-1"))),
        store.ingest(message(instance, "b", None)),
        store.ingest(message(instance, "k", Some("key-1"))),
        store.ingest(message(instance, "other body", Some("key-1"))),
        store.ingest(message(instance, "c", None)),
    );
    let (a, a_deliveries) = created(&plain_a);
    let (k, _) = created(&keyed);
    let (b, b_deliveries) = created(&plain_b);
    let (c, _) = created(&plain_c);
    assert_eq!(replay.expect("replay"), IngestOutcome::Replayed { message_id: k.clone() });
    assert_eq!(reused.expect("reused"), IngestOutcome::KeyReused { message_id: k.clone() });
    assert_eq!(a_deliveries.len(), 2, "one delivery per endpoint");

    for (id, body) in [(&a, "a"), (&b, "b"), (&c, "c"), (&k, "k")] {
        let stored = store.message(instance, id).await.expect("read").expect("stored");
        assert_eq!(stored.payload, body.as_bytes(), "each message keeps its own payload");
        assert_eq!(stored.summary.login_id.as_deref(), Some(format!("login-{body}").as_str()));
        assert_eq!(stored.deliveries.len(), 2);
        assert!(stored.deliveries.iter().all(|d| d.status == DeliveryStatus::Pending && d.attempts_made == 0));
    }
    assert_eq!(store.stats(t0()).await.expect("stats").messages, 4, "a replay stores nothing");

    // One delivery recorded twice in one batch (refused, then delivered), one delivered,
    // one refused: applied in the order they were queued.
    let (first, second, other, refused) = tokio::join!(
        store.record_attempt(attempt(instance, &a, &a_deliveries[0], 1, false)),
        store.record_attempt(attempt(instance, &a, &a_deliveries[0], 2, true)),
        store.record_attempt(attempt(instance, &a, &a_deliveries[1], 1, true)),
        store.record_attempt(attempt(instance, &b, &b_deliveries[0], 1, false)),
    );
    for result in [first, second, other, refused] {
        result.expect("recorded");
    }
    // Each record entered the ledger with it, in the order they were queued.
    let entries = store.ledger_entries(instance, 0, 100).await.expect("ledger");
    let chained: Vec<(String, u32, Option<u16>)> =
        entries.iter().map(|e| (e.facts.message_id.clone(), e.facts.attempt, e.facts.status)).collect();
    assert_eq!(
        chained,
        vec![
            (a.to_string(), 1, Some(503)),
            (a.to_string(), 2, Some(200)),
            (a.to_string(), 1, Some(200)),
            (b.to_string(), 1, Some(503))
        ]
    );
    let lines: Vec<String> = entries.iter().map(|e| serde_json::to_string(e).expect("json")).collect();
    finhook_core::ledger::verify_lines(&lines, None).expect("the chain verifies");
    let stored = store.message(instance, &a).await.expect("read").expect("stored");
    let twice = stored.deliveries.iter().find(|d| d.id == a_deliveries[0]).expect("delivery");
    assert_eq!((twice.status, twice.attempts_made, twice.next_attempt_at), (DeliveryStatus::Delivered, 2, None));
    let numbers: Vec<u32> = twice.attempts.iter().map(|attempt| attempt.attempt_number).collect();
    assert_eq!(numbers, vec![1, 2]);
    assert_eq!(twice.attempts[0].status_code, Some(503));
    assert_eq!(twice.attempts[1].response_excerpt.as_deref(), Some("ok"));
    let once = stored.deliveries.iter().find(|d| d.id == a_deliveries[1]).expect("delivery");
    assert_eq!((once.status, once.attempts_made), (DeliveryStatus::Delivered, 1));
    let stored = store.message(instance, &b).await.expect("read").expect("stored");
    let later = stored.deliveries.iter().find(|d| d.id == b_deliveries[0]).expect("delivery");
    assert_eq!(
        (later.status, later.attempts_made, later.next_attempt_at),
        (DeliveryStatus::Pending, 1, Some(t0() + chrono::Duration::minutes(30)))
    );
    assert_eq!(later.attempts[0].error_detail.as_deref(), Some("503"));
    store.close().await;
}
