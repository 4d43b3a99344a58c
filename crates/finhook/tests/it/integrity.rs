//! Integrity under write errors: a real full disk, text one database would refuse, and an
//! attempt whose record the store will not take. A `202` must always mean committed.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// A small tmpfs mounted for one test (needs root, which CI has), unmounted when dropped.
struct Tmpfs {
    mountpoint: tempfile::TempDir,
}

impl Tmpfs {
    /// `None`, after saying why, when this process may not mount.
    #[allow(clippy::print_stderr)] // A skipped test must say so where the test runner shows it.
    fn mount(size: &str) -> Option<Self> {
        let mountpoint = tempfile::tempdir().expect("tempdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(mountpoint.path())
            .status();
        match mounted {
            Ok(status) if status.success() => Some(Self { mountpoint }),
            other => {
                eprintln!("SKIPPED: mounting a {size} tmpfs failed ({other:?}); the full-disk test needs root");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    fn free_bytes(&self) -> u64 {
        let out =
            std::process::Command::new("df").args(["--output=avail", "-B1"]).arg(self.path()).output().expect("df");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df avail")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.mountpoint.path()).status();
    }
}

async fn problem_of(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(kind.as_deref(), Some("application/problem+json"), "{status}: {body}");
    }
    (status, retry_after, body)
}

/// Ingests `body` under a fresh idempotency key; the id if it was acknowledged.
async fn try_ingest(app: &TestApp, body: &[u8], n: usize) -> Result<String, (u16, Option<String>, Value)> {
    let response = app.ingest_raw("acme", body.to_vec(), Some(&format!("fill-{n}"))).await;
    let (status, retry_after, body) = problem_of(response).await;
    if status == 202 {
        Ok(body["message_id"].as_str().expect("message_id").to_string())
    } else {
        Err((status, retry_after, body))
    }
}

fn assert_refused_clearly(refusal: &(u16, Option<String>, Value)) {
    let (status, retry_after, body) = refusal;
    assert!(matches!(status, 503 | 507), "a write the store could not take: {status} {body}");
    assert!(retry_after.is_some(), "{status} says when to retry: {body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("nothing was stored")), "{body}");
}

#[tokio::test]
async fn a_full_disk_never_turns_a_202_into_a_lost_callback() {
    let Some(disk) = Tmpfs::mount("16m") else { return };
    let dir = Arc::new(tempfile::tempdir_in(disk.path()).expect("dir on the tmpfs"));
    let options = Options { dir: Some(dir.clone()), ..Options::default() };
    let app = spawn_app_with(options.clone()).await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/hook") })).await;

    // Leave about 600 KiB free: well under SQLite's WAL auto-checkpoint (4 MB), so the disk
    // stays full once it is full.
    let ballast = disk.path().join("ballast");
    let room = disk.free_bytes().saturating_sub(600 * 1024);
    std::fs::write(&ballast, vec![0u8; usize::try_from(room).expect("size")]).expect("ballast");

    let payload = fixture("get_accounts_detail.json");
    let mut acknowledged = BTreeSet::new();
    let mut refusals = Vec::new();
    let mut n = 0;
    // Fill until three ingests in a row are refused (bounded: 600 KiB holds ~100 of these).
    while refusals.len() < 3 && n < 2_000 {
        n += 1;
        match try_ingest(&app, &payload, n).await {
            Ok(id) => {
                acknowledged.insert(id);
                refusals.clear();
            }
            Err(refusal) => refusals.push(refusal),
        }
    }
    assert_eq!(refusals.len(), 3, "the disk filled up within {n} callbacks");
    for refusal in &refusals {
        assert_refused_clearly(refusal);
    }
    assert!(refusals.iter().any(|(status, _, _)| *status == 507), "a full disk is named as such: {refusals:?}");
    // About ten: each committed alone, ~15 WAL pages (the message with its overflow
    // pages, the deliveries, their indexes, the instance's stored bytes).
    assert!(acknowledged.len() >= 5, "some callbacks fitted before the disk filled: {}", acknowledged.len());

    // Take the last free bytes too, so that even the smallest write cannot fit.
    let top_up = disk.path().join("top-up");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&top_up).expect("top-up file");
        let chunk = vec![0u8; 4096];
        for _ in 0..10_000 {
            if file.write_all(&chunk).and_then(|()| file.flush()).is_err() {
                break;
            }
        }
    }
    for _ in 0..3 {
        n += 1;
        let refusal = try_ingest(&app, &fixture("kyc.json"), n).await.expect_err("nothing fits any more");
        assert_eq!(refusal.0, 507, "{refusal:?}");
        assert_refused_clearly(&refusal);
    }

    // While full: health says so, and an instance or endpoint is either made whole (space
    // a failed write had taken in the WAL can be reused) or refused, leaving nothing.
    let (status, _) = app.health().await;
    assert!(matches!(status, 503 | 507), "healthz while full: {status}");
    let mut instances = Vec::new();
    for i in 0..20 {
        let name = format!("beta-{i}");
        let created = app.http.post(app.url("/v1/instances")).bearer_auth(ADMIN_KEY).json(&json!({ "name": name }));
        let (status, retry_after, body) = problem_of(created.send().await.expect("create")).await;
        instances.push((name, status));
        if status != 201 {
            assert_eq!((status, retry_after.is_some()), (507, true), "{body}");
            break;
        }
    }
    assert!(instances.last().is_some_and(|(_, status)| *status == 507), "{instances:?}");
    let mut endpoints = Vec::new();
    for i in 0..20 {
        let create = app
            .http
            .post(app.url("/v1/instances/acme/endpoints"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({ "url": receiver.url(&format!("/other-{i}")) }));
        let (status, _, body) = problem_of(create.send().await.expect("create endpoint")).await;
        endpoints.push(status);
        if status != 201 {
            assert_eq!(status, 507, "{body}");
            break;
        }
    }
    assert_eq!(endpoints.last(), Some(&507), "{endpoints:?}");

    // Space comes back: no restart, the store recovers by itself.
    std::fs::remove_file(&ballast).expect("free the space");
    std::fs::remove_file(&top_up).expect("free the space");
    let (status, body) = app.health().await;
    assert_eq!(status, 200, "healthz recovers by itself: {body}");
    for (name, created) in &instances {
        let (status, _) = app.admin(Method::GET, &format!("/v1/instances/{name}"), None).await;
        let expected = if *created == 201 { StatusCode::OK } else { StatusCode::NOT_FOUND };
        assert_eq!(status, expected, "{name} was answered {created}");
    }
    let (_, listed) = app.admin(Method::GET, "/v1/instances/acme/endpoints", None).await;
    let made = endpoints.iter().filter(|status| **status == 201).count();
    assert_eq!(
        listed["data"].as_array().expect("endpoints").len(),
        1 + made,
        "a refused endpoint was not half-created"
    );
    app.create_instance("beta").await;
    for _ in 0..20 {
        n += 1;
        acknowledged.insert(try_ingest(&app, &payload, n).await.expect("accepted once space is back"));
    }

    // Every acknowledged callback is delivered, exactly those, and survives a restart.
    assert!(app.deliver_due().await >= acknowledged.len());
    assert_eq!(app.deliver_due().await, 0, "every attempt was recorded");
    let delivered: BTreeSet<String> =
        receiver.received().iter().map(|r| r.header("webhook-id").expect("webhook-id").to_string()).collect();
    assert_eq!(delivered, acknowledged, "every 202 was delivered, and nothing else");
    app.stop().await;
    let app = spawn_app_with(options).await;
    for id in &acknowledged {
        let message = app.message("acme", id).await;
        for delivery in message["deliveries"].as_array().expect("deliveries") {
            assert_eq!(delivery["status"], "delivered", "{id} after a restart");
        }
    }
    let (status, _) = app.admin(Method::GET, "/v1/instances/beta", None).await;
    assert_eq!(status, StatusCode::OK, "the instance made after the recovery was committed");
    app.stop().await;
    drop(dir);
}

async fn app_on(backend: Backend) -> TestApp {
    spawn_app_on(backend, Options::default()).await
}

/// Runs one test body on each store, as `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await
            }
        }
    };
}

/// A receiver that answers 200 with exactly the bytes its path names.
async fn odd_receiver() -> (String, tokio::task::JoinHandle<()>, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let body: Vec<u8> = match uri.path() {
                // "OK" in UTF-16LE with a byte-order mark: every other byte is NUL.
                "/utf16" => vec![0xff, 0xfe, b'O', 0, b'K', 0],
                "/nul" => b"accepted\0\0trailing".to_vec(),
                "/invalid" => vec![b'o', b'k', 0xc3, 0x28, 0xa0, 0xa1, 0xff],
                _ => b"poison".to_vec(),
            };
            (StatusCode::OK, body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, server, hits)
}

async fn odd_answers_are_recorded_once_and_not_resent(backend: Backend) {
    let app = app_on(backend).await;
    let (base, server, hits) = odd_receiver().await;
    app.create_instance("acme").await;
    for path in ["/utf16", "/nul", "/invalid"] {
        app.create_endpoint("acme", json!({ "url": format!("{base}{path}") })).await;
    }
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 3);
    assert_eq!(app.deliver_due().await, 0, "every attempt was recorded: nothing is due again");
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(app.deliver_due().await, 0, "nothing is re-sent after the lease either");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3);

    let message = app.message("acme", &id).await;
    let mut excerpts: Vec<(String, u64)> = message["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            assert_eq!(d["status"], "delivered", "{d}");
            let attempt = &d["attempts"][0];
            (
                attempt["response_excerpt"].as_str().expect("excerpt").to_string(),
                attempt["response_bytes"].as_u64().expect("raw byte count"),
            )
        })
        .collect();
    excerpts.sort();
    let mut expected = vec![
        ("accepted\u{FFFD}\u{FFFD}trailing".to_string(), 18),
        ("ok\u{FFFD}(\u{FFFD}\u{FFFD}\u{FFFD}".to_string(), 7),
        ("\u{FFFD}\u{FFFD}O\u{FFFD}K\u{FFFD}".to_string(), 6),
    ];
    expected.sort();
    assert_eq!(excerpts, expected);
    server.abort();
    app.stop().await;
}
on_both_stores!(odd_answers_are_recorded_once_and_not_resent);

/// The same edge cases, sent to either store, get the same answers.
async fn identifier_limits_are_the_same_on_both_stores(backend: Backend) {
    let app = app_on(backend).await;
    app.create_instance("acme").await;
    let long = |n: usize| "x".repeat(n);
    let kyc = |login: &str, extra: Value| {
        let mut body = json!({ "ResponseType": "KYC", "Login": { "Id": login } });
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        serde_json::to_vec(&body).expect("json")
    };
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        ("a NUL in Login.Id", kyc("a\u{0}b", json!({})), 422, Some("$.Login.Id")),
        ("an escape in Login.Id", kyc("a\u{1b}[31m", json!({})), 422, Some("$.Login.Id")),
        ("a Login.Id of 3,000 characters", kyc(&long(3000), json!({})), 422, Some("$.Login.Id")),
        ("a Login.Id of 257 characters", kyc(&long(257), json!({})), 422, Some("$.Login.Id")),
        ("a Login.Id of 256 characters", kyc(&long(256), json!({})), 202, None),
        ("a NUL in Tag", kyc("L1", json!({ "Tag": "t\u{0}" })), 422, Some("$.Tag")),
        ("a line break in Tag", kyc("L1", json!({ "Tag": "a\r\nb" })), 422, Some("$.Tag")),
        ("a Tag of 1,025 characters", kyc("L1", json!({ "Tag": long(1025) })), 422, Some("$.Tag")),
        ("a Tag of 1,024 characters", kyc("L2", json!({ "Tag": "é".repeat(1024) })), 202, None),
        ("a NUL in RequestId", kyc("L3", json!({ "RequestId": "r\u{0}" })), 422, Some("$.RequestId")),
        ("a RequestId of 257 characters", kyc("L3", json!({ "RequestId": long(257) })), 422, Some("$.RequestId")),
        ("an empty Tag", kyc("L4", json!({ "Tag": "" })), 202, None),
    ];
    let mut accepted = 0;
    for (name, body, expected, path) in cases {
        let response = app.ingest_raw("acme", body, None).await;
        let (status, _, problem) = problem_of(response).await;
        assert_eq!(status, expected, "{name} ({backend:?}): {problem}");
        if let Some(path) = path {
            assert_eq!(problem["errors"][0]["path"], path, "{name}: {problem}");
        }
        accepted += usize::from(status == 202);
    }
    let listed = app.messages("acme", "?limit=100").await;
    assert_eq!(listed["data"].as_array().expect("data").len(), accepted, "refused callbacks left nothing behind");

    let endpoint = json!({ "url": "http://127.0.0.1:9/hook", "description": "bank\u{0}" });
    let (status, problem) = app.admin(Method::POST, "/v1/instances/acme/endpoints", Some(endpoint)).await;
    assert_eq!((status.as_u16(), &problem["errors"][0]["path"]), (422, &json!("$.description")), "{problem}");
    let (_, endpoints) = app.admin(Method::GET, "/v1/instances/acme/endpoints", None).await;
    assert_eq!(endpoints, json!({ "data": [], "next_cursor": null }));
    let (status, _) = app.health().await;
    assert_eq!(status, 200, "the server is healthy after every refusal");
    app.stop().await;
}
on_both_stores!(identifier_limits_are_the_same_on_both_stores);

/// Makes the database itself refuse any attempt record whose excerpt says "poison", the way
/// a constraint or a broken column would: a real error from the real database.
async fn poison_attempt_records(backend: Backend, database: &str) {
    use sqlx::Connection;
    match backend {
        Backend::Sqlite => {
            let mut db = sqlx::SqliteConnection::connect(database).await.expect("open the SQLite file");
            sqlx::query(
                "CREATE TRIGGER poison BEFORE INSERT ON attempts WHEN NEW.response_excerpt LIKE '%poison%'
                 BEGIN SELECT RAISE(ABORT, 'poisoned attempt record'); END",
            )
            .execute(&mut db)
            .await
            .expect("trigger");
        }
        Backend::Postgres => {
            let mut db = sqlx::PgConnection::connect(database).await.expect("connect");
            sqlx::raw_sql(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN IF NEW.response_excerpt LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned attempt record'; END IF;
                 RETURN NEW; END $$;
                 CREATE TRIGGER poison BEFORE INSERT ON attempts FOR EACH ROW EXECUTE FUNCTION poison();",
            )
            .execute(&mut db)
            .await
            .expect("trigger");
        }
    }
}

async fn an_attempt_that_cannot_be_recorded_is_not_resent_in_a_loop(backend: Backend) {
    let app = app_on(backend).await;
    let database = app.database_url();
    let (base, server, hits) = odd_receiver().await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": format!("{base}/poison"), "success": "exactly_200" })).await;
    poison_attempt_records(backend, &database).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;

    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(app.deliver_due().await, 0, "the delivery was settled despite the refused record");
    app.clock.advance(chrono::Duration::hours(1));
    assert_eq!(app.deliver_due().await, 0, "and is not re-sent when the lease would have run out");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "the receiver got it once");

    let message = app.message("acme", &id).await;
    let attempt = &message["deliveries"][0]["attempts"][0];
    assert_eq!(message["deliveries"][0]["status"], "delivered", "{message}");
    assert_eq!(attempt["status_code"], 200);
    assert_eq!(attempt["response_excerpt"], Value::Null, "stored without the text the database refused");
    assert!(attempt["error_detail"].as_str().is_some_and(|d| d.contains("could not be stored")), "{attempt}");

    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("finhook_store_write_errors_total{kind=\"internal\"}"))
        .unwrap_or_else(|| panic!("no write-error counter in:\n{metrics}"));
    assert!(line.ends_with(" 3"), "three tries of the full record failed: {line}");
    server.abort();
    app.stop().await;
}
on_both_stores!(an_attempt_that_cannot_be_recorded_is_not_resent_in_a_loop);
