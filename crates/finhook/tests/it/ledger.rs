//! The delivery ledger: every attempt is an entry of its instance's hash chain, exported as
//! JSON lines that verify offline; the chain carries on across restarts and outlives the
//! retention of the messages it describes.

use finhook_core::ledger::{verify_lines, LedgerEntry, Problem};
use finhook_core::secret::hex;
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{spawn_app, spawn_app_with};
use crate::helpers::*;

/// An export: status, the head headers (seq, hash) and the lines.
pub(crate) struct Export {
    pub status: u16,
    pub head: Option<(u64, String)>,
    pub lines: Vec<String>,
}

impl Export {
    pub fn entries(&self) -> Vec<LedgerEntry> {
        self.lines.iter().map(|line| serde_json::from_str(line).expect("an entry")).collect()
    }
}

pub(crate) async fn export(app: &TestApp, instance: &str, key: &str, query: &str) -> Export {
    let response = app
        .http
        .get(app.url(&format!("/v1/instances/{instance}/ledger{query}")))
        .bearer_auth(key)
        .send()
        .await
        .expect("export");
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let head = header("finhook-ledger-seq")
        .map(|seq| (seq.parse().expect("seq"), header("finhook-ledger-head").expect("hash")));
    if status == 200 {
        assert_eq!(header("content-type").as_deref(), Some("application/x-ndjson"));
    }
    let text = response.text().await.expect("body");
    let lines = if status == 200 { text.lines().map(str::to_string).collect() } else { vec![text] };
    Export { status, head, lines }
}

fn sha256_hex(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

#[tokio::test]
async fn every_attempt_is_an_entry_of_a_chain_that_verifies_offline() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(503)], Reply::Status(200)).await;
    let key = app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": receiver.url("/first") })).await;
    let kyc = fixture("kyc.json");
    let detail = fixture("get_accounts_detail.json");
    let kyc_id = app.ingest("acme", kyc.clone()).await;
    assert_eq!(app.deliver_due().await, 1, "the KYC callback: answered 503");
    // The endpoint moves; the ledger keeps the URL each attempt went to.
    let path = format!("/v1/instances/acme/endpoints/{}", endpoint["id"].as_str().expect("id"));
    let (status, _) = app.admin(Method::PATCH, &path, Some(json!({ "url": receiver.url("/moved") }))).await;
    assert_eq!(status, 200);
    let detail_id = app.ingest("acme", detail.clone()).await;
    app.clock.advance(chrono::Duration::minutes(30));
    assert_eq!(app.deliver_due().await, 2, "the KYC retry and the GetAccountsDetail callback");

    let exported = export(&app, "acme", &key, "").await;
    assert_eq!(exported.status, 200);
    let summary = verify_lines(exported.lines.iter().map(String::as_str), None).expect("the chain verifies");
    assert_eq!((summary.entries, summary.first_seq, summary.last_seq), (3, 1, 3));
    assert_eq!(exported.head, Some((3, summary.head.clone())), "the headers name the head the export ends at");

    let entries = exported.entries();
    let first = &entries[0].facts;
    assert_eq!((first.message_id.as_str(), first.attempt, first.status), (kyc_id.as_str(), 1, Some(503)));
    assert_eq!(first.error_class.as_deref(), Some("http"));
    assert_eq!(first.endpoint_url, receiver.url("/first"));
    assert_eq!(first.body_sha256, sha256_hex(&kyc));
    assert_eq!(first.instance, "acme");
    let mut rest: Vec<_> = entries[1..].iter().map(|e| (e.facts.message_id.clone(), e.facts.attempt)).collect();
    rest.sort();
    let mut expected = vec![(kyc_id.clone(), 2), (detail_id.clone(), 1)];
    expected.sort();
    assert_eq!(rest, expected);
    for entry in &entries[1..] {
        assert_eq!((entry.facts.status, entry.facts.error_class.as_deref()), (Some(200), None));
        assert_eq!(entry.facts.endpoint_url, receiver.url("/moved"));
    }
    let detail_entry = entries.iter().find(|e| e.facts.message_id == detail_id).expect("detail");
    assert_eq!(detail_entry.facts.body_sha256, sha256_hex(&detail));
    // Each entry is the attempt the message's history shows.
    let message = app.message("acme", &kyc_id).await;
    let attempt_ids: Vec<&str> = message["deliveries"][0]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    let chained: Vec<&str> =
        entries.iter().filter(|e| e.facts.message_id == kyc_id).map(|e| e.facts.attempt_id.as_str()).collect();
    let (mut attempt_ids, mut chained) = (attempt_ids, chained);
    attempt_ids.sort_unstable();
    chained.sort_unstable();
    assert_eq!(attempt_ids, chained);

    // Tampering with the export is caught.
    let mut changed = exported.lines.clone();
    changed[1] = changed[1].replace("\"status\":200", "\"status\":204");
    assert_eq!(verify_lines(changed.iter().map(String::as_str), None).expect_err("changed").problem, Problem::Altered);
    let mut removed = exported.lines.clone();
    removed.remove(1);
    assert!(matches!(
        verify_lines(removed.iter().map(String::as_str), None).expect_err("removed").problem,
        Problem::OutOfSequence { previous: 1, found: 3 }
    ));
}

#[tokio::test]
async fn an_export_can_start_later_and_refuses_bad_queries() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let key = app.create_instance("acme").await;
    let other_key = app.create_instance("globex").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    app.create_endpoint("globex", json!({ "url": receiver.url("/g") })).await;

    let empty = export(&app, "acme", &key, "").await;
    assert_eq!((empty.status, empty.head, empty.lines.len()), (200, None, 0), "no attempt yet: an empty chain");
    for _ in 0..3 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    app.deliver_due().await;
    app.clock.advance(chrono::Duration::hours(1));
    app.ingest("acme", fixture("investments.json")).await;
    app.ingest("globex", fixture("kyc.json")).await;
    app.deliver_due().await;

    let whole = export(&app, "acme", &key, "").await;
    assert_eq!(whole.lines.len(), 4, "only acme's attempts");
    // From the middle: anchored on the entry before it.
    let tail = export(&app, "acme", &key, "?after_seq=2").await;
    let summary = verify_lines(tail.lines.iter().map(String::as_str), None).expect("verifies");
    assert_eq!((summary.first_seq, summary.last_seq), (3, 4));
    assert_eq!(summary.anchor, whole.entries()[1].hash);
    let since = (t0() + chrono::Duration::minutes(30)).to_rfc3339();
    let later = export(&app, "acme", &key, &format!("?since={}", since.replace('+', "%2B"))).await;
    assert_eq!(later.entries().iter().map(|e| e.seq).collect::<Vec<_>>(), vec![4]);
    let none = export(&app, "acme", &key, "?since=2099-01-01T00:00:00Z").await;
    assert_eq!((none.status, none.lines.len()), (200, 0));

    // Each instance has a chain of its own, from seq 1.
    let globex = export(&app, "globex", &other_key, "").await;
    let summary = verify_lines(globex.lines.iter().map(String::as_str), None).expect("verifies");
    assert_eq!((summary.instance.as_str(), summary.first_seq, summary.entries), ("globex", 1, 1));

    let bad = export(&app, "acme", &key, "?since=yesterday").await;
    assert_eq!(bad.status, 422);
    assert!(bad.lines[0].contains("RFC 3339"), "{}", bad.lines[0]);
    let both = export(&app, "acme", &key, "?since=2026-01-01T00:00:00Z&after_seq=1").await;
    assert_eq!(both.status, 422);
    assert_eq!(export(&app, "acme", &other_key, "").await.status, 404, "another instance's key");
    assert_eq!(export(&app, "acme", "fhk_wrong", "").await.status, 401);
    assert_eq!(export(&app, "acme", ADMIN_KEY, "").await.status, 200);
}

#[tokio::test]
async fn the_chain_carries_on_across_a_restart() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let key = app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    for _ in 0..3 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    assert_eq!(app.deliver_due().await, 3);
    let options = app.restart_options();
    app.stop().await;

    let app = spawn_app_with(options).await;
    for _ in 0..2 {
        app.ingest("acme", fixture("investments.json")).await;
    }
    assert_eq!(app.deliver_due().await, 2);
    let exported = export(&app, "acme", &key, "").await;
    let summary = verify_lines(exported.lines.iter().map(String::as_str), None).expect("one chain");
    assert_eq!((summary.first_seq, summary.last_seq, summary.entries), (1, 5, 5));
}

#[tokio::test]
async fn retention_deletes_the_callbacks_but_never_the_ledger() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let key = app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let message = app.ingest("acme", fixture("kyc.json")).await;
    app.deliver_due().await;
    let before = export(&app, "acme", &key, "").await;
    assert_eq!(before.lines.len(), 1);

    app.clock.advance(chrono::Duration::days(31));
    let store = app.state.store.clone();
    assert_eq!(finhook_server::retention::sweep(store.as_ref(), &app.clock, 30).await.expect("sweep"), 1);
    let (status, _) = app.admin(Method::GET, &format!("/v1/instances/acme/messages/{message}"), None).await;
    assert_eq!(status, 404, "the callback and its personal data are gone");
    let after = export(&app, "acme", &key, "").await;
    assert_eq!(after.lines, before.lines, "the evidence of its delivery is not");
    verify_lines(after.lines.iter().map(String::as_str), None).expect("and still verifies");
}
