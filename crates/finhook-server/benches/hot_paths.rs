//! Micro-benchmarks of what every callback costs the server: validating the body (the quick
//! check ingest runs, and the typed parser), signing
//! it for delivery, and the embedded store's group-committed ingest (alone, and 64 at once
//! sharing commits). `cargo bench -p finhook-server --bench hot_paths` measures;
//! `cargo test --all-targets` runs each once, as a check that they still work.

use std::hint::black_box;
use std::sync::Arc;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use finhook_core::flinks::{parse_callback, validate_callback, ParseLimits, ResponseType};
use finhook_core::retry::RetryPolicy;
use finhook_core::secret::{EndpointSecret, KeyHash};
use finhook_core::signing;
use finhook_server::store::sql::SqlStore;
use finhook_server::store::{
    DeliveryOrder, InstanceId, Mode, NewEndpoint, NewInstance, NewMessage, Signing, Store, SuccessRule,
};

const DETAIL: &[u8] = include_bytes!("../../../testdata/flinks/get_accounts_detail.json");

fn validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Bytes(DETAIL.len() as u64));
    // What ingest runs: the quick check, which keeps only the keys.
    group.bench_function("get_accounts_detail", |b| {
        b.iter(|| validate_callback(black_box(DETAIL), ParseLimits::default()))
    });
    // The typed parser (the receiver's, and ingest's for a body the quick check refuses).
    group.bench_function("get_accounts_detail_typed", |b| {
        b.iter(|| parse_callback(black_box(DETAIL), ParseLimits::default()).map(|callback| callback.keys()))
    });
    group.finish();
}

fn signing(c: &mut Criterion) {
    let secrets = [EndpointSecret::generate()];
    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Bytes(DETAIL.len() as u64));
    group.bench_function("both_schemes", |b| {
        b.iter(|| signing::sign(&secrets, "msg_01JBENCH", 1_700_000_000, black_box(DETAIL)))
    });
    group.finish();
}

/// A fresh embedded store with one instance and one endpoint.
async fn store_with_endpoint(dir: &std::path::Path) -> (Arc<SqlStore>, InstanceId) {
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let store = SqlStore::open_sqlite(&url, None).await.expect("open the store");
    let now = Utc::now();
    let instance = store
        .create_instance(NewInstance {
            name: "bench".into(),
            customer_id: "bench".into(),
            mode: Mode::Live,
            api_key_hash: KeyHash::of("bench"),
            now,
        })
        .await
        .expect("instance");
    store
        .create_endpoint(
            instance.id,
            NewEndpoint {
                url: "https://receiver.example/hook".into(),
                description: None,
                event_types: None,
                retry: RetryPolicy::default(),
                success: SuccessRule::Exactly200,
                enabled: true,
                signing: Signing::Hmac,
                client_identity: None,
                ordering: DeliveryOrder::None,
                secret: EndpointSecret::generate(),
                now,
            },
        )
        .await
        .expect("endpoint");
    (Arc::new(store), instance.id)
}

fn message(instance: InstanceId) -> NewMessage {
    NewMessage {
        instance_id: instance,
        response_type: ResponseType::GetAccountsDetail.into(),
        login_id: Some("bench-login".into()),
        request_id: None,
        tag: None,
        idempotency_key: None,
        body_sha256: "0".repeat(64),
        payload: bytes::Bytes::from_static(DETAIL),
        now: Utc::now(),
    }
}

fn store_ingest(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, instance) = runtime.block_on(store_with_endpoint(dir.path()));
    let mut group = c.benchmark_group("store_ingest");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_at_a_time", |b| {
        b.to_async(&runtime).iter(|| async { store.ingest(message(instance)).await.expect("ingest") })
    });
    const AT_ONCE: usize = 64;
    group.throughput(Throughput::Elements(AT_ONCE as u64));
    group.bench_function("64_at_once", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..AT_ONCE {
                let store = store.clone();
                tasks.spawn(async move { store.ingest(message(instance)).await.expect("ingest") });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("task");
            }
        })
    });
    group.finish();
    runtime.block_on(store.close());
}

criterion_group!(benches, validation, signing, store_ingest);
criterion_main!(benches);
