//! The embedded store's payload log, end to end: callback bodies kept beside the database
//! (not in the rows), delivered byte for byte after a restart, erased at retention, never
//! sent or shown once corrupt. (A full disk under the log is in `integrity.rs`.)

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::*;

async fn sqlite_app(options: Options) -> TestApp {
    spawn_app_on(Backend::Sqlite, options).await
}

/// The GetAccountsDetail fixture with `marker` in a transaction's description: a string
/// found nowhere else, to look for in the files.
fn marked(marker: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture("get_accounts_detail.json")).expect("utf-8");
    assert!(text.contains("LOYER MARS"));
    text.replacen("LOYER MARS", marker, 1).into_bytes()
}

fn log_dir(app: &TestApp) -> PathBuf {
    app.dir.path().join("finhook.db.payloads")
}

/// The log's segments, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("the payload log").map(|e| e.expect("entry").path()).collect();
    found.sort();
    found
}

fn holds(path: &Path, marker: &str) -> bool {
    let bytes = std::fs::read(path).expect("read");
    bytes.windows(marker.len()).any(|window| window == marker.as_bytes())
}

fn log_holds(app: &TestApp, marker: &str) -> bool {
    segments(&log_dir(app)).iter().any(|segment| holds(segment, marker))
}

/// `(length(payload), payload_segment)` of a message's row, read with SQLite itself.
async fn row_of(app: &TestApp, id: &str) -> (i64, Option<i64>) {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", app.dir.path().join("finhook.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("open the database");
    let row: (i64, Option<i64>) = sqlx::query_as("SELECT length(payload), payload_segment FROM messages WHERE id = ?")
        .bind(id)
        .fetch_one(&mut db)
        .await
        .expect("the message's row");
    row
}

/// `finhook_payload_log_bytes` as `/metrics` says.
async fn log_bytes(app: &TestApp) -> u64 {
    let text = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line = text.lines().find(|line| line.starts_with("finhook_payload_log_bytes ")).expect("the gauge");
    line.rsplit(' ').next().and_then(|value| value.parse().ok()).expect("a number")
}

#[tokio::test]
async fn a_body_lives_in_the_payload_log_and_is_delivered_byte_for_byte_after_a_restart() {
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    let app = sqlite_app(Options::default()).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let body = marked("LOYER payload-log-restart");
    let id = app.ingest("acme", body.clone()).await;
    assert_eq!(app.deliver_due().await, 1, "the first attempt fails: the delivery waits 30 minutes");

    assert_eq!(row_of(&app, &id).await.0, 0, "the row holds no body");
    assert!(row_of(&app, &id).await.1.is_some(), "the row names its place in the log");
    assert!(log_holds(&app, "payload-log-restart"), "the log holds the body");

    let (options, clock) = (app.restart_options(), app.clock.clone());
    app.stop().await;
    let app = sqlite_app(options).await;
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(app.deliver_due().await, 1, "the retry after the restart");
    let received = receiver.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].body, body, "read back from the log, the exact bytes received");
    let shown = app.message("acme", &id).await;
    assert_eq!(shown["payload"], serde_json::from_slice::<Value>(&body).expect("json"));
    let ingested = app.ingest("acme", marked("LOYER after-the-restart")).await;
    assert_eq!(row_of(&app, &ingested).await.1, Some(2), "each start writes a segment of its own");
}

#[tokio::test]
async fn retention_erases_a_body_from_the_log_and_drops_segments_no_message_names() {
    // Two attempts succeed, every later one fails.
    let receiver = TestReceiver::start(&[Reply::Status(200), Reply::Status(200)], Reply::Status(500)).await;
    let app = sqlite_app(Options::default()).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    app.ingest("acme", marked("LOYER first-start-delivered")).await;
    assert_eq!(app.deliver_due().await, 1);
    let (options, clock) = (app.restart_options(), app.clock.clone());
    app.stop().await;
    let app = sqlite_app(options).await;
    app.ingest("acme", marked("LOYER second-start-delivered")).await;
    assert_eq!(app.deliver_due().await, 1);
    let pending_body = marked("LOYER second-start-pending");
    let pending = app.ingest("acme", pending_body.clone()).await;
    assert_eq!(app.deliver_due().await, 1, "it fails, and waits");
    let [first, second] = <[PathBuf; 2]>::try_from(segments(&log_dir(&app))).expect("one segment per start");
    assert!(holds(&first, "first-start-delivered") && holds(&second, "second-start-delivered"));

    let before = log_bytes(&app).await;
    assert!(before >= 2 * 4096, "two segments with a body each: {before} bytes");
    clock.advance(chrono::Duration::days(31));
    let swept = finhook_server::retention::sweep(app.state.store.as_ref(), &clock, 30).await.expect("sweep");
    assert_eq!(swept, 2, "the delivered callbacks are past retention; the pending one stays");
    let after = log_bytes(&app).await;
    assert!(0 < after && after < before, "the metric follows: {before} then {after} bytes");
    assert_eq!(
        segments(&log_dir(&app)),
        std::slice::from_ref(&second),
        "the first segment is named by no message any more"
    );
    assert!(
        !holds(&second, "second-start-delivered"),
        "a body past retention is erased at once, though its segment stays for another"
    );
    assert!(holds(&second, "second-start-pending"));
    let shown = app.message("acme", &pending).await;
    assert_eq!(shown["payload"], serde_json::from_slice::<Value>(&pending_body).expect("json"));
}

#[tokio::test]
async fn a_body_that_changed_on_disk_is_never_sent_nor_shown() {
    let receiver = TestReceiver::start(&[Reply::Status(500), Reply::Status(500)], Reply::Status(200)).await;
    let app = sqlite_app(Options::default()).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let damaged = app.ingest("acme", marked("LOYER damaged-on-disk")).await;
    let sound_body = marked("LOYER sound-on-disk");
    let sound = app.ingest("acme", sound_body.clone()).await;
    assert_eq!(app.deliver_due().await, 2, "both fail once and wait");
    let (options, clock) = (app.restart_options(), app.clock.clone());
    app.stop().await;

    let segment = segments(&options.dir.as_ref().expect("dir").path().join("finhook.db.payloads"))[0].clone();
    let mut bytes = std::fs::read(&segment).expect("segment");
    let at = bytes.windows(7).position(|w| w == b"damaged").expect("the marker");
    bytes[at] = b'D';
    std::fs::write(&segment, &bytes).expect("one byte changed");

    let app = sqlite_app(options).await;
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(app.deliver_due().await, 1, "the sound callback goes; the damaged one is held back");
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].body, sound_body);
    assert!(received.iter().all(|r| !r.body.windows(7).any(|w| w == b"Damaged")), "the changed bytes never left");
    let (status, problem) =
        app.admin(reqwest::Method::GET, &format!("/v1/instances/acme/messages/{damaged}"), None).await;
    assert_eq!(status, 500, "shown as an error, not as other bytes: {problem}");
    assert_eq!(app.message("acme", &sound).await["deliveries"][0]["status"], "delivered");
}

#[tokio::test]
async fn a_database_restored_without_its_payload_log_is_refused_at_start() {
    use finhook_server::store::{sql::SqlStore, Store};
    let app = sqlite_app(Options::default()).await;
    app.create_instance("acme").await;
    app.ingest("acme", marked("LOYER restored-alone")).await;
    let dir = app.dir.clone();
    app.stop().await;
    let (log, aside) = (dir.path().join("finhook.db.payloads"), dir.path().join("aside"));
    std::fs::rename(&log, &aside).expect("the log moved away");

    let url = format!("sqlite://{}", dir.path().join("finhook.db").display());
    let refused = SqlStore::open_sqlite(&url, None).await.expect_err("refused");
    let said = refused.to_string();
    assert!(said.contains("lacks segment(s) [1]") && said.contains("restore it"), "{said}");

    std::fs::remove_dir(&log).expect("the empty log the refused start made");
    std::fs::rename(&aside, &log).expect("the log restored");
    let store = SqlStore::open_sqlite(&url, None).await.expect("with its log, it opens");
    store.close().await;
}
