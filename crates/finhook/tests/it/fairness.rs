//! Endpoints that hang or cannot be reached, beside healthy ones: the adaptive cap, slow
//! attempts giving their slots back, and the circuit breaker (see `delivery::lanes`).

use serde_json::json;

use super::spawn_app_with;
use crate::helpers::*;

#[tokio::test]
async fn a_hanging_endpoint_with_a_backlog_does_not_hold_up_the_others() {
    // Six attempts in flight at most: the hanging endpoint never answers, so its cap stays
    // at one attempt, which leaves its slot once it has run for a second.
    let options =
        Options { background_worker: true, timeout_seconds: 30, concurrency: 6, per_endpoint: 2, ..Options::default() };
    let app = spawn_app_with(options).await;
    let hanging = TestReceiver::start(&[], Reply::Hang).await;
    let healthy = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": hanging.url("/") })).await;
    app.create_endpoint("acme", json!({ "url": healthy.url("/") })).await;
    for _ in 0..20 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    // All twenty reach the healthy endpoint while the hanging one holds its connection for
    // 30 s; `wait_for` gives up after 20 s.
    healthy.wait_for(20).await;
    assert_eq!(hanging.received().len(), 1, "an endpoint that never answered has one attempt in flight at most");
}

#[tokio::test]
async fn more_hanging_endpoints_than_slots_do_not_starve_a_healthy_one() {
    // Two slots, four endpoints of another tenant that never answer, each with a backlog.
    // Before slow attempts gave their slots back, the first two took both slots for the
    // whole 30 s timeout and the healthy endpoint received nothing.
    let options = Options {
        background_worker: true,
        timeout_seconds: 30,
        concurrency: 2,
        per_endpoint: 2,
        slow_after_ms: 100,
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    let mut hanging = Vec::new();
    for _ in 0..4 {
        hanging.push(TestReceiver::start(&[], Reply::Hang).await);
    }
    let healthy = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("mallory").await;
    for receiver in &hanging {
        app.create_endpoint("mallory", json!({ "url": receiver.url("/") })).await;
    }
    for _ in 0..3 {
        app.ingest("mallory", fixture("kyc.json")).await;
    }
    // Both slots are taken (by whichever two endpoints came first).
    let taken = async {
        while hanging.iter().filter(|receiver| !receiver.received().is_empty()).count() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(PATIENCE, taken).await.expect("two hanging attempts start");
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": healthy.url("/") })).await;
    for _ in 0..20 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    healthy.wait_for(20).await;
    for receiver in &hanging {
        assert_eq!(receiver.received().len(), 1, "one attempt in flight per endpoint that never answered");
    }
}

/// A URL on 127.0.0.1 where nothing listens: every attempt fails to connect at once.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/hook")
}

async fn attempts_per_message(app: &TestApp, ids: &[String]) -> Vec<usize> {
    let mut counts = Vec::new();
    for id in ids {
        let message = app.message("acme", id).await;
        counts.push(message["deliveries"][0]["attempts"].as_array().map_or(0, Vec::len));
    }
    counts
}

async fn pauses_metric(app: &TestApp) -> String {
    let text = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    text.lines().find(|line| line.starts_with("finhook_endpoint_pauses_total")).unwrap_or_default().to_string()
}

#[tokio::test]
async fn an_unreachable_endpoint_pauses_after_five_failures_and_is_probed_with_one_attempt() {
    let app = spawn_app_with(Options { per_endpoint: 8, ..Options::default() }).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": dead_url() })).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(app.ingest("acme", fixture("kyc.json")).await);
    }
    // One attempt at a time (it never answered), five failures, then the circuit opens:
    // the other three deliveries wait in the store with no attempt spent.
    assert_eq!(app.deliver_due().await, 5);
    let mut counts = attempts_per_message(&app, &ids).await;
    counts.sort_unstable();
    assert_eq!(counts, [0, 0, 0, 1, 1, 1, 1, 1]);
    assert_eq!(pauses_metric(&app).await, "finhook_endpoint_pauses_total 1");

    // The pause is 30 s: nothing before, one probe after; the probe fails, and the next
    // pause is twice as long.
    app.clock.advance(chrono::Duration::seconds(29));
    assert_eq!(app.deliver_due().await, 0, "paused");
    app.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(app.deliver_due().await, 1, "one probe");
    assert_eq!(pauses_metric(&app).await, "finhook_endpoint_pauses_total 2");
    app.clock.advance(chrono::Duration::seconds(59));
    assert_eq!(app.deliver_due().await, 0, "paused for 60 s after the failed probe");

    // Its owner fixes the URL: the pause ends at once, and everything waiting is delivered.
    let healthy = TestReceiver::start(&[], Reply::Status(200)).await;
    let path = format!("/v1/instances/acme/endpoints/{}", endpoint["id"].as_str().expect("id"));
    let (status, body) = app.admin(reqwest::Method::PATCH, &path, Some(json!({ "url": healthy.url("/") }))).await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(app.deliver_due().await, 2, "the three that never had an attempt, less the probe's");
    assert_eq!(healthy.received().len(), 2);
}

async fn store_scans(app: &TestApp) -> u64 {
    let text = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line = text.lines().find(|line| line.starts_with("finhook_delivery_store_scans_total")).expect("scans metric");
    line.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a count")
}

/// A lane that is behind (its hand-offs did not fit) refills from the store once it has
/// drained to half, not whenever an attempt finished: each look at the store takes at least
/// half a lane. (Looking for one or two deliveries at a time cost an overloaded node a
/// lane's depth of rows read per delivery: docs/BENCHMARKS.md, "Overload".)
#[tokio::test]
async fn a_lane_behind_its_hand_offs_looks_in_the_store_once_per_half_lane() {
    // Eight attempts at a time (the cap grows from one by one per answer), sixteen queued.
    let app = spawn_app_with(Options { per_endpoint: 8, ..Options::default() }).await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    for _ in 0..40 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    let before = store_scans(&app).await;
    assert_eq!(app.deliver_due().await, 40);
    assert_eq!(receiver.received().len(), 40);
    let scans = store_scans(&app).await - before;
    // The first look fills the lane with 16; the other 24 come in looks of 8 or more, while
    // the cap grows 1, 2, 3, ...: three looks in all. Refilling whenever there was room
    // took six.
    assert!((2..=4).contains(&scans), "{scans} looks in the store for 40 deliveries");
}

/// Another connection's lock that keeps attempt records from committing: SQLite's write
/// lock (a backup, `sqlite3` at a prompt), or on PostgreSQL an exclusive lock on
/// `attempts`, which still lets readers in.
enum RecordsLocked {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl RecordsLocked {
    async fn take(app: &TestApp) -> Self {
        use sqlx::Connection;
        let url = app.database_url();
        if app.database.is_some() {
            let mut connection = sqlx::PgConnection::connect(&url).await.expect("another connection");
            sqlx::query("BEGIN").execute(&mut connection).await.expect("begin");
            sqlx::query("LOCK TABLE attempts IN EXCLUSIVE MODE").execute(&mut connection).await.expect("lock");
            Self::Postgres(connection)
        } else {
            let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("another connection");
            sqlx::query("BEGIN IMMEDIATE").execute(&mut connection).await.expect("take the write lock");
            Self::Sqlite(connection)
        }
    }

    async fn release(self) {
        let unlocked = match self {
            Self::Sqlite(mut connection) => sqlx::query("ROLLBACK").execute(&mut connection).await.map(|_| ()),
            Self::Postgres(mut connection) => sqlx::query("ROLLBACK").execute(&mut connection).await.map(|_| ()),
        };
        unlocked.expect("give the lock back");
    }
}

/// A slot is for the exchange with the endpoint, not for the store's commit. One slot, and
/// another connection keeps records from committing: the second callback goes out as soon
/// as the first is answered, while the first's record still waits. Before, each slot
/// waited out its record's commit (on SQLite, the second went out only after the first's
/// record gave up: 10 s of busy timeout per try).
#[tokio::test]
async fn an_answered_attempt_leaves_its_slot_while_its_record_waits_for_the_store() {
    let options = Options { background_worker: true, concurrency: 1, per_endpoint: 1, ..Options::default() };
    let app = spawn_app_with(options).await;
    let receiver = TestReceiver::start(&[Reply::Held], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let first = app.ingest("acme", fixture("kyc.json")).await;
    let second = app.ingest("acme", fixture("kyc.json")).await;
    receiver.wait_for(1).await; // the first holds the only slot

    let locked = RecordsLocked::take(&app).await;
    receiver.release(1);
    let received = receiver.wait_for(2).await;
    assert_eq!(received.len(), 2, "the second went out while the first's record waited");
    let status = |message: &serde_json::Value| message["deliveries"][0]["status"].as_str().map(str::to_string);
    let waiting = app.message("acme", &first).await;
    assert_eq!(status(&waiting).as_deref(), Some("pending"), "the first's record is not committed yet: {waiting}");

    locked.release().await;
    // A probe queued now commits after the records queued before it.
    for _ in 0..50 {
        app.state.store.ping().await.expect("probe");
        let both = [app.message("acme", &first).await, app.message("acme", &second).await];
        if both.iter().all(|message| status(message).as_deref() == Some("delivered")) {
            return;
        }
    }
    panic!("both deliveries were to be recorded once the lock was free");
}
