//! Ordered delivery per LoginId (`ordering: "login_id"`): 1,000 LoginIds, each with a KYC,
//! a GetAccountsDetail and an Investments callback, all stored before anything is sent, to
//! a receiver that refuses a quarter of the first two attempts. The ordered endpoint gets each
//! LoginId's callbacks one at a time in ingest order, a refusal holding back only that
//! LoginId; the unordered endpoint beside it gets the same callbacks out of order (which is
//! what shows that the check below can fail). And a LoginId queued deeper than the scan's
//! window does not hide another LoginId's first callback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use finhook_server::clock::Clock;
use finhook_server::store::NewMessage;
use serde_json::{json, Value};
use sha2::Digest;

use super::spawn_app;
use crate::helpers::*;

const LOGINS: usize = 1_000;

/// One request the receiver saw: its path, LoginId, `webhook-sequence`, and whether it said 200.
type Seen = (String, String, u64, bool);

/// A receiver that refuses about a quarter of the first and second attempts, decided by a
/// hash of the delivery and its attempt number, and takes every third: so no LoginId needs
/// more than nine rounds of attempts (the test gives twelve) and no delivery runs out of
/// its ten. (Refusing a quarter of every attempt left about one run in thirty with a
/// LoginId that needed more rounds than the test gave, or a delivery refused ten times.)
/// It records what it saw and said in one step.
async fn flaky_receiver() -> (String, Arc<Mutex<Vec<Seen>>>) {
    #[derive(Default)]
    struct State {
        attempts: HashMap<(String, String), u32>,
        seen: Vec<Seen>,
    }
    let state = Arc::new(Mutex::new(State::default()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (handler_state, handler_seen) = (state.clone(), seen.clone());
    let router = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let (state, seen) = (handler_state.clone(), handler_seen.clone());
        async move {
            let body: Value = serde_json::from_slice(&body).expect("json");
            let login = body["Login"]["Id"].as_str().expect("login").to_string();
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).expect("id").to_string();
            let sequence: u64 = headers
                .get("webhook-sequence")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .expect("a webhook-sequence");
            let path = uri.path().to_string();
            let mut state = state.lock().expect("state");
            let attempt = state.attempts.entry((path.clone(), id.clone())).or_default();
            *attempt += 1;
            let digest = sha2::Sha256::digest(format!("{path} {id} {attempt}"));
            let ok = *attempt >= 3 || digest[0] % 4 != 0;
            state.seen.push((path.clone(), login.clone(), sequence, ok));
            seen.lock().expect("seen").push((path, login, sequence, ok));
            if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), seen)
}

fn callback(name: &str, login: &str) -> (Bytes, String) {
    let mut body: Value = serde_json::from_slice(&fixture(name)).expect("json");
    body["Login"]["Id"] = json!(login);
    let bytes = serde_json::to_vec(&body).expect("bytes");
    let sha = finhook_core::secret::hex(&sha2::Sha256::digest(&bytes));
    (Bytes::from(bytes), sha)
}

/// Whether each LoginId's requests at `path` came one at a time in order: each one's
/// sequence is the one after the last accepted (a refused one is tried again before any
/// later one), and all three were accepted.
fn in_order(seen: &[Seen], path: &str) -> Result<(), String> {
    let mut accepted: HashMap<&str, u64> = HashMap::new();
    for (at, login, sequence, ok) in seen.iter().filter(|(at, ..)| at == path) {
        let done = accepted.entry(login.as_str()).or_default();
        if *sequence != *done + 1 {
            return Err(format!("{at}: LoginId {login} got #{sequence} after #{done} was accepted"));
        }
        if *ok {
            *done = *sequence;
        }
    }
    match accepted.iter().find(|(_, done)| **done != 3) {
        Some((login, done)) => Err(format!("{path}: LoginId {login} ended at #{done}")),
        None if accepted.len() == LOGINS => Ok(()),
        None => Err(format!("{path}: {} LoginIds of {LOGINS}", accepted.len())),
    }
}

#[tokio::test]
async fn a_thousand_logins_arrive_in_order_one_at_a_time_despite_refusals() {
    let app = spawn_app().await;
    let (url, seen) = flaky_receiver().await;
    app.create_instance("acme").await;
    let ordered = app.create_endpoint("acme", json!({ "url": format!("{url}/ordered"), "ordering": "login_id" })).await;
    assert_eq!(ordered["ordering"], "login_id", "{ordered}");
    let unordered = app.create_endpoint("acme", json!({ "url": format!("{url}/unordered") })).await;
    assert_eq!(unordered["ordering"], "none");
    let instance = app.state.store.instance_by_name("acme").await.expect("read").expect("acme").id;
    // Stored in ingest order, type by type (every LoginId's KYC first), before any attempt.
    for (name, kind) in [
        ("kyc.json", finhook_core::flinks::ResponseType::Kyc),
        ("get_accounts_detail.json", finhook_core::flinks::ResponseType::GetAccountsDetail),
        ("investments.json", finhook_core::flinks::ResponseType::Investments),
    ] {
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..LOGINS {
            let (store, now) = (app.state.store.clone(), app.clock.now());
            let (payload, body_sha256) = callback(name, &format!("00000000-0000-4000-8000-{n:012}"));
            writes.spawn(async move {
                let message = NewMessage {
                    instance_id: instance,
                    response_type: kind.into(),
                    login_id: Some(format!("00000000-0000-4000-8000-{n:012}")),
                    request_id: None,
                    tag: None,
                    idempotency_key: None,
                    body_sha256,
                    payload,
                    now,
                };
                store.ingest(message).await.expect("ingest");
            });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("an ingest");
        }
    }
    // Rounds 30 minutes apart until nothing waits (a bounded number: ten attempts each).
    for _ in 0..12 {
        app.deliver_due().await;
        if app.state.store.pending_deliveries().await.expect("count") == 0 {
            break;
        }
        app.clock.advance(chrono::Duration::minutes(31));
    }
    assert_eq!(app.state.store.pending_deliveries().await.expect("count"), 0, "everything delivered");
    let seen = seen.lock().expect("seen").clone();
    in_order(&seen, "/ordered").expect("the ordered endpoint");
    let refused = seen.iter().filter(|(path, _, _, ok)| path == "/ordered" && !ok).count();
    assert!(refused > 500, "a quarter refused: {refused}");
    assert!(in_order(&seen, "/unordered").is_err(), "without ordering, the same refusals put callbacks out of order");
}

/// One LoginId with a queue deeper than the scan's window in due order (256), then another
/// LoginId's callback behind it: the scan still finds the second LoginId's first delivery
/// (through the index by LoginId) beside the first one's, and nothing else of either.
#[tokio::test]
async fn a_deep_queue_of_one_login_does_not_hide_another_logins_first_callback() {
    let app = spawn_app().await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": "https://127.0.0.1:9/", "ordering": "login_id" })).await;
    let endpoint = finhook_core::ids::EndpointId::parse(endpoint["id"].as_str().expect("id")).expect("endpoint id");
    let (deep, other) = ("00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b");
    let mut deep_ids = Vec::new();
    for _ in 0..300 {
        deep_ids.push(app.ingest("acme", callback("kyc.json", deep).0.to_vec()).await);
    }
    let behind = app.ingest("acme", callback("kyc.json", other).0.to_vec()).await;
    let now = app.clock.now();
    app.state.store.heartbeat(now).await.expect("heartbeat");
    let lease = now + chrono::Duration::seconds(45);
    let taken = app.state.store.take_due(&endpoint, now, lease, 10, 0, true).await.expect("take");
    let mut messages: Vec<&str> = taken.due.iter().map(|due| due.message_id.as_str()).collect();
    messages.sort_unstable();
    let mut expected = vec![deep_ids[0].as_str(), behind.as_str()];
    expected.sort_unstable();
    assert_eq!(messages, expected, "the first callback of each LoginId, and only those");
    assert!(taken.due.iter().all(|due| due.sequence == Some(1)), "{:?}", taken.due);
}
