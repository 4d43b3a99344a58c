//! The catch-up feed through the API: a receiver that was down pulls the callbacks it
//! missed, oldest first behind a cursor, and acknowledges them, which marks their
//! deliveries delivered (with an attempt and a ledger entry that say so) so they are not
//! sent again; bad input changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::spawn_app;
use crate::helpers::*;

const KYC_LOGIN: &str = "c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e";

async fn feed(app: &TestApp, key: &str, query: &str) -> (StatusCode, Value) {
    app.call(Method::GET, &format!("/v1/instances/acme/feed{query}"), key, None).await
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {page}"))
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn a_receiver_that_was_down_pulls_what_it_missed_and_acknowledges_it() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(503)).await;
    let key = app.create_instance("acme").await;
    let other_key = app.create_instance("other").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/down") })).await;
    app.create_endpoint("other", json!({ "url": receiver.url("/other") })).await;
    let kyc = app.ingest("acme", fixture("kyc.json")).await;
    let detail = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    let wealth = app.ingest("acme", fixture("investments.json")).await;
    let others = app.ingest("other", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 4, "each refused once (503)");

    // Nothing has settled yet: the feed trails the present by five seconds.
    let (status, page) = feed(&app, &key, "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page, json!({ "data": [], "next_cursor": null, "has_more": false }));
    app.clock.advance(chrono::Duration::seconds(6));

    // Oldest first, each as the message page shows it, the payload exactly as ingested.
    let (_, page) = feed(&app, &key, "").await;
    assert_eq!(ids(&page), [kyc.clone(), detail.clone(), wealth.clone()], "the instance's own, in ingest order");
    assert_eq!(page["has_more"], false);
    assert_eq!(page["next_cursor"].as_str(), Some(wealth.as_str()));
    let first = &page["data"][0];
    assert_eq!(first["payload"], serde_json::from_slice::<Value>(&fixture("kyc.json")).expect("json"));
    assert_eq!(first["deliveries"][0]["status"], "pending");
    assert_eq!(first["deliveries"][0]["attempts"][0]["status_code"], 503);

    // Pages behind the cursor; one LoginId.
    let (_, page) = feed(&app, &key, "?limit=2").await;
    assert_eq!((ids(&page), &page["has_more"]), (vec![kyc.clone(), detail.clone()], &json!(true)));
    let (_, page) = feed(&app, &key, &format!("?limit=2&since={detail}")).await;
    assert_eq!((ids(&page), &page["has_more"]), (vec![wealth.clone()], &json!(false)));
    let (_, page) = feed(&app, &key, &format!("?since={wealth}")).await;
    assert_eq!(page, json!({ "data": [], "next_cursor": wealth, "has_more": false }), "caught up: the cursor stays");
    let (_, page) = feed(&app, &key, &format!("?login_id={KYC_LOGIN}")).await;
    assert_eq!(ids(&page), [kyc.clone(), detail.clone()]);

    // Acknowledged: delivered, with an attempt that says so, and not sent again.
    let (status, acked) = app
        .call(Method::POST, "/v1/instances/acme/feed/ack", &key, Some(json!({ "message_ids": [kyc, detail] })))
        .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(
        acked,
        json!({ "acknowledged": [{ "message_id": kyc, "deliveries": 1 }, { "message_id": detail, "deliveries": 1 }] })
    );
    let message = app.message("acme", &kyc).await;
    let delivery = &message["deliveries"][0];
    assert_eq!((&delivery["status"], &delivery["attempts_made"]), (&json!("delivered"), &json!(2)));
    let ack = &delivery["attempts"][1];
    assert_eq!((&ack["status_code"], &ack["succeeded"]), (&Value::Null, &json!(true)), "{ack}");
    assert!(ack["error_detail"].as_str().is_some_and(|d| d.contains("catch-up feed")), "{ack}");
    let (_, page) = feed(&app, &key, "").await;
    assert_eq!(ids(&page), std::slice::from_ref(&wealth), "undelivered only, by default");
    let (_, page) = feed(&app, &key, "?status=all").await;
    assert_eq!(ids(&page).len(), 3);
    app.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(app.deliver_due().await, 2, "the retries of the unacknowledged only (acme's and other's)");
    // Acknowledging again finds nothing left to mark; the ledger holds every attempt.
    let (status, acked) =
        app.call(Method::POST, "/v1/instances/acme/feed/ack", &key, Some(json!({ "message_ids": [kyc] }))).await;
    assert_eq!((status, &acked["acknowledged"][0]["deliveries"]), (StatusCode::OK, &json!(0)));
    let ledger = super::ledger::export(&app, "acme", &key, "").await;
    finhook_core::ledger::verify_lines(&ledger.lines, None).expect("the chain verifies");
    let acks: Vec<_> = ledger
        .entries()
        .into_iter()
        .filter(|e| e.facts.message_id == kyc && e.facts.attempt == 2)
        .map(|e| (e.facts.status, e.facts.error_class))
        .collect();
    assert_eq!(acks, [(None, None)], "the acknowledgement is in the ledger as attempt 2, with no answer");
    let (status, audit) = app.admin(Method::GET, "/v1/audit", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(audit.to_string().contains("feed.ack"), "{audit}");

    // Bad input: a precise error, nothing changed.
    for (query, path) in
        [("?since=nope", "since"), ("?status=failed", "status"), ("?limit=0", "limit"), ("?limit=101", "limit")]
    {
        let (status, problem) = feed(&app, &key, query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {problem}");
        assert_eq!(problem["errors"][0]["path"], path, "{query}: {problem}");
    }
    for (body, path) in [
        (json!({ "message_ids": [] }), "$.message_ids"),
        (json!({ "message_ids": ["msg_nope"] }), "$.message_ids[0]"),
        (json!({ "message_ids": [wealth, others] }), "$.message_ids[1]"),
    ] {
        let (status, problem) = app.call(Method::POST, "/v1/instances/acme/feed/ack", &key, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["path"], path, "{body}: {problem}");
    }
    assert_eq!(app.message("acme", &wealth).await["deliveries"][0]["status"], "pending", "all or nothing");
    let (status, _) = app.call(Method::GET, "/v1/instances/acme/feed", &other_key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another instance's key");
}

#[tokio::test]
async fn an_acknowledgement_can_be_kept_to_one_endpoint() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(503)).await;
    let key = app.create_instance("acme").await;
    app.create_instance("other").await;
    let mine = app.create_endpoint("acme", json!({ "url": receiver.url("/mine") })).await;
    let theirs = app.create_endpoint("acme", json!({ "url": receiver.url("/theirs") })).await;
    let elsewhere = app.create_endpoint("other", json!({ "url": receiver.url("/elsewhere") })).await;
    let (mine, theirs) = (mine["id"].as_str().expect("id"), theirs["id"].as_str().expect("id"));
    let message = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2);
    app.clock.advance(chrono::Duration::seconds(6));

    let (_, page) = feed(&app, &key, &format!("?endpoint_id={mine}")).await;
    assert_eq!(ids(&page), std::slice::from_ref(&message));
    let body = json!({ "message_ids": [message], "endpoint_id": mine });
    let (status, acked) = app.call(Method::POST, "/v1/instances/acme/feed/ack", &key, Some(body)).await;
    assert_eq!((status, &acked["acknowledged"][0]["deliveries"]), (StatusCode::OK, &json!(1)), "{acked}");
    let (_, page) = feed(&app, &key, &format!("?endpoint_id={mine}")).await;
    assert_eq!(ids(&page), Vec::<String>::new(), "delivered at that endpoint");
    let (_, page) = feed(&app, &key, "").await;
    assert_eq!(ids(&page), std::slice::from_ref(&message), "still undelivered at the other");
    let stored = app.message("acme", &message).await;
    let status_at = |endpoint: &str| {
        stored["deliveries"].as_array().expect("deliveries").iter().find(|d| d["endpoint_id"] == endpoint).expect("d")
            ["status"]
            .clone()
    };
    assert_eq!((status_at(mine), status_at(theirs)), (json!("delivered"), json!("pending")));

    // Another instance's endpoint, or none at all: named, nothing changed.
    let foreign = elsewhere["id"].as_str().expect("id");
    let (status, problem) = feed(&app, &key, &format!("?endpoint_id={foreign}")).await;
    assert_eq!((status, &problem["errors"][0]["path"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("endpoint_id")));
    let body = json!({ "message_ids": [message], "endpoint_id": "ep_nope" });
    let (status, problem) = app.call(Method::POST, "/v1/instances/acme/feed/ack", &key, Some(body)).await;
    assert_eq!((status, &problem["errors"][0]["path"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("$.endpoint_id")));
    assert_eq!(status_at(theirs), json!("pending"));
    let stored = app.message("acme", &message).await;
    let pending = stored["deliveries"].as_array().expect("d").iter().filter(|d| d["status"] == "pending").count();
    assert_eq!(pending, 1, "the refused acknowledgement changed nothing");
}

/// `finhook listen --catch-up-from`: a receiver that was down starts, pulls from the feed
/// what its endpoint missed, stores it (conciliated by LoginId like webhooks), and
/// acknowledges it, so the server stops retrying; the instance's other endpoint still waits
/// for its own. Its next start takes only what is new.
#[tokio::test]
async fn finhook_listen_catches_up_from_the_feed_at_start() {
    use crate::process::{FinhookProcess, LISTEN_UI_TOKEN};
    let app = spawn_app().await;
    let down = TestReceiver::start(&[], Reply::Status(503)).await;
    let key = app.create_instance("acme").await;
    let mine = app.create_endpoint("acme", json!({ "url": down.url("/mine") })).await;
    let theirs = app.create_endpoint("acme", json!({ "url": down.url("/theirs") })).await;
    let (mine, theirs) = (mine["id"].as_str().expect("id").to_string(), theirs["id"].as_str().expect("id").to_string());
    let kyc = app.ingest("acme", fixture("kyc.json")).await;
    let detail = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    assert_eq!(app.deliver_due().await, 4, "refused at both endpoints");
    app.clock.advance(chrono::Duration::seconds(6));

    let dir = tempfile::tempdir().expect("tempdir");
    let args = |endpoint: &str| -> Vec<String> {
        ["--no-verify", "--catch-up-from", &app.url(""), "--instance", "acme", "--instance-key", &key]
            .into_iter()
            .map(String::from)
            .chain(["--catch-up-endpoint".to_string(), endpoint.to_string()])
            .collect()
    };
    let listen = FinhookProcess::listen(dir.path(), &args(&mine)).await;
    assert!(
        listen.early.iter().any(|line| line == "caught up from the feed: 2 callbacks (2 new), acknowledged"),
        "{:?}",
        listen.early
    );
    let login = reqwest::Client::new()
        .get(listen.url(&format!("/logins/{KYC_LOGIN}")))
        .bearer_auth(LISTEN_UI_TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.expect("json");
    assert_eq!(login["callbacks"].as_array().map(Vec::len), Some(2), "both, conciliated: {login}");
    for id in [&kyc, &detail] {
        let message = app.message("acme", id).await;
        let at = |endpoint: &str| {
            message["deliveries"].as_array().expect("d").iter().find(|d| d["endpoint_id"] == endpoint).expect("d")
                ["status"]
                .clone()
        };
        assert_eq!((at(&mine), at(&theirs)), (json!("delivered"), json!("pending")), "{id}");
    }
    listen.kill().await;

    // The next start: only the new callback.
    app.ingest("acme", fixture("investments.json")).await;
    app.clock.advance(chrono::Duration::seconds(6));
    let listen = FinhookProcess::listen(dir.path(), &args(&mine)).await;
    assert!(
        listen.early.iter().any(|line| line == "caught up from the feed: 1 callbacks (1 new), acknowledged"),
        "{:?}",
        listen.early
    );
    listen.kill().await;

    // A wrong key: said, and the receiver serves anyway.
    let wrong: Vec<String> =
        ["--no-verify", "--catch-up-from", &app.url(""), "--instance", "acme", "--instance-key", "fhk_wrong"]
            .into_iter()
            .map(String::from)
            .collect();
    let listen = FinhookProcess::listen(dir.path(), &wrong).await;
    assert!(
        !listen.early.iter().any(|line| line.starts_with("caught up")),
        "the failure goes to stderr, and the receiver still serves: {:?}",
        listen.early
    );
    listen.kill().await;
}
