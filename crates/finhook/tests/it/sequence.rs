//! `webhook-sequence`: every delivery of a callback with a LoginId carries its place among
//! that LoginId's callbacks to its endpoint, from 1 and without gaps, per endpoint (an
//! endpoint that takes fewer types counts only what it takes); a redelivery keeps it.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{json, Value};

use super::spawn_app;
use crate::helpers::*;

fn with_login(fixture_name: &str, login: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture(fixture_name)).expect("json");
    body["Login"]["Id"] = json!(login);
    serde_json::to_vec(&body).expect("bytes")
}

/// (path, LoginId, response type) → the sequences received, in arrival order.
fn received(receiver: &TestReceiver) -> HashMap<(String, String, String), Vec<u64>> {
    let mut seen: HashMap<(String, String, String), Vec<u64>> = HashMap::new();
    for got in receiver.received() {
        let body: Value = serde_json::from_slice(&got.body).expect("json");
        let key = (
            got.path.clone(),
            body["Login"]["Id"].as_str().expect("login").to_string(),
            body["ResponseType"].as_str().expect("type").to_string(),
        );
        let sequence = got.header("webhook-sequence").expect("a webhook-sequence").parse().expect("a number");
        seen.entry(key).or_default().push(sequence);
    }
    seen
}

#[tokio::test]
async fn each_login_is_numbered_per_endpoint_without_gaps_and_a_redelivery_keeps_its_number() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/all") })).await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/wealth"), "event_types": ["Investments"] })).await;
    let (a, b) = ("aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002");
    let kyc = app.ingest("acme", with_login("kyc.json", a)).await;
    let detail = app.ingest("acme", with_login("get_accounts_detail.json", a)).await;
    app.ingest("acme", with_login("kyc.json", b)).await;
    app.ingest("acme", with_login("investments.json", a)).await;
    assert_eq!(app.deliver_due().await, 5);
    let seen = received(&receiver);
    let at = |path: &str, login: &str, kind: &str| seen.get(&(path.into(), login.into(), kind.into())).cloned();
    assert_eq!(at("/all", a, "KYC"), Some(vec![1]));
    assert_eq!(at("/all", a, "GetAccountsDetail"), Some(vec![2]));
    assert_eq!(at("/all", a, "Investments"), Some(vec![3]));
    assert_eq!(at("/all", b, "KYC"), Some(vec![1]), "each LoginId counts apart");
    assert_eq!(at("/wealth", a, "Investments"), Some(vec![1]), "an endpoint counts what it takes");

    // Callbacks of one LoginId in one group commit: numbered one after the other.
    let c = "cccccccc-0000-4000-8000-000000000003";
    let (one, two, three) = tokio::join!(
        app.ingest_raw("acme", with_login("kyc.json", c), None),
        app.ingest_raw("acme", with_login("get_accounts_detail.json", c), None),
        app.ingest_raw("acme", with_login("kyc.json", c), None),
    );
    assert!([one, two, three].iter().all(|r| r.status().as_u16() == 202));
    assert_eq!(app.deliver_due().await, 3);
    let seen = received(&receiver);
    let mut numbers: Vec<u64> = seen
        .iter()
        .filter(|((path, login, _), _)| path == "/all" && login == c)
        .flat_map(|(_, sequences)| sequences.clone())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3], "gapless within a batch");

    // A redelivery is the same callback again: the same number. An endpoint that never had
    // it numbers it as its next.
    let (status, _) =
        app.admin(Method::POST, &format!("/v1/instances/acme/messages/{detail}/redeliver"), Some(json!({}))).await;
    assert_eq!(status.as_u16(), 202);
    let late = app.create_endpoint("acme", json!({ "url": receiver.url("/late") })).await;
    let late = late["id"].as_str().expect("id");
    let body = json!({ "endpoint_id": late });
    let (status, _) =
        app.admin(Method::POST, &format!("/v1/instances/acme/messages/{kyc}/redeliver"), Some(body)).await;
    assert_eq!(status.as_u16(), 202);
    assert_eq!(app.deliver_due().await, 2);
    let seen = received(&receiver);
    assert_eq!(
        seen.get(&("/all".into(), a.into(), "GetAccountsDetail".into())).cloned(),
        Some(vec![2, 2]),
        "redelivered with its number"
    );
    assert_eq!(seen.get(&("/late".into(), a.into(), "KYC".into())).cloned(), Some(vec![1]));
    // The message, and so the catch-up feed, shows each delivery's number.
    let (_, message) = app.admin(Method::GET, &format!("/v1/instances/acme/messages/{detail}"), None).await;
    let numbers: Vec<&Value> =
        message["deliveries"].as_array().expect("deliveries").iter().map(|d| &d["sequence"]).collect();
    assert_eq!(numbers, [&json!(2), &json!(2)], "the first round and the redelivery: {message}");
}
