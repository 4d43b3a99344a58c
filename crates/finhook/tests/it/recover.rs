//! Bulk recovery: one job re-sends every failed delivery of a time range (of one endpoint,
//! or of all), says how far it got, and never re-sends one twice.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use super::spawn_app;
use crate::helpers::*;

/// Starts a job and waits (bounded) until it is no longer running.
async fn recover(app: &TestApp, body: Value) -> Value {
    let (status, job) = app.admin(Method::POST, "/v1/instances/acme/recover", Some(body)).await;
    assert_eq!(status, 202, "{job}");
    let path = format!("/v1/instances/acme/recover/{}", job["id"].as_str().expect("id"));
    for _ in 0..500 {
        let (status, job) = app.admin(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{job}");
        if job["status"] != "running" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the recovery did not end");
}

fn at(offset: Duration) -> String {
    (t0() + offset).to_rfc3339()
}

#[tokio::test]
async fn every_failed_delivery_of_a_range_is_resent_once_by_one_job() {
    let app = spawn_app().await;
    let flaky = TestReceiver::start(&[Reply::Status(500); 3], Reply::Status(200)).await;
    let other = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let once = json!({ "max_attempts": 1 });
    let a = app.create_endpoint("acme", json!({ "url": flaky.url("/a"), "retry": once })).await;
    let b = app.create_endpoint("acme", json!({ "url": other.url("/b"), "retry": once })).await;
    let first = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2, "both fail");
    app.clock.advance(Duration::hours(2));
    let second = app.ingest("acme", fixture("kyc.json")).await;
    let third = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 4, "a fails both, b delivers both");

    let job = recover(&app, json!({ "since": at(Duration::hours(1)) })).await;
    assert_eq!(
        (job["status"].as_str(), job["total"].as_u64(), job["resent"].as_u64()),
        (Some("done"), Some(2), Some(2)),
        "{job}"
    );
    assert_eq!(job["until"], at(Duration::hours(2)).replace("+00:00", "Z"));
    assert_eq!(app.deliver_due().await, 2, "the two re-sent deliveries, due at once");
    for id in [&second, &third] {
        let deliveries = app.message("acme", id).await["deliveries"].clone();
        let latest: Vec<&str> = deliveries
            .as_array()
            .expect("d")
            .iter()
            .filter(|d| d["superseded"] == false)
            .map(|d| d["status"].as_str().expect("s"))
            .collect();
        assert_eq!(latest, ["delivered", "delivered"], "{deliveries}");
    }
    let failed = app.messages("acme", "?status=failed").await;
    let ids: Vec<&str> =
        failed["data"].as_array().expect("data").iter().map(|m| m["id"].as_str().expect("id")).collect();
    assert_eq!(ids, [first.as_str()], "outside the range, still failed");

    let again = recover(&app, json!({ "since": at(Duration::hours(1)) })).await;
    assert_eq!((again["total"].as_u64(), again["resent"].as_u64()), (Some(0), Some(0)), "nothing is sent twice");
    let only_b = recover(&app, json!({ "since": at(Duration::zero()), "endpoint_id": b["id"] })).await;
    assert_eq!((only_b["total"].as_u64(), only_b["resent"].as_u64()), (Some(1), Some(1)), "{only_b}");
    assert_eq!(only_b["endpoint_id"], b["id"]);
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(other.received().len(), 4, "b: the first failure, two deliveries, the one re-sent");
    assert_eq!(flaky.received().iter().filter(|r| r.path == "/a").count(), 5);
    let _ = a;

    for (body, path) in [
        (json!({ "since": "yesterday" }), "$.since"),
        (json!({ "since": at(Duration::hours(1)), "until": at(Duration::zero()) }), "$.until"),
    ] {
        let (status, problem) = app.admin(Method::POST, "/v1/instances/acme/recover", Some(body)).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["path"], path, "{problem}");
    }
    let (status, _) = app
        .admin(
            Method::POST,
            "/v1/instances/acme/recover",
            Some(json!({ "since": at(Duration::zero()), "endpoint_id": "ep_nope" })),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.admin(Method::GET, "/v1/instances/acme/recover/rcv_01JD0000000000000000000000", None).await;
    assert_eq!(status, 404);
}

/// A job a stop interrupted (here: recorded, never run) is resumed at the next start.
#[tokio::test]
async fn a_recovery_interrupted_by_a_stop_is_resumed_at_the_next_start() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/"), "retry": { "max_attempts": 1 } })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let store = app.state.store.clone();
    let acme = store.instance_by_name("acme").await.expect("read").expect("acme");
    let job = store.start_recovery(acme.id, None, t0() - Duration::hours(1), t0(), t0()).await.expect("a job");
    let options = app.restart_options();
    drop(store);
    app.stop().await;

    let app = super::spawn_app_with(options).await;
    let path = format!("/v1/instances/acme/recover/{}", job.id);
    let mut resumed = Value::Null;
    for _ in 0..500 {
        resumed = app.admin(Method::GET, &path, None).await.1;
        if resumed["status"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!((resumed["status"].as_str(), resumed["resent"].as_u64()), (Some("done"), Some(1)), "{resumed}");
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(app.message("acme", &id).await["deliveries"][1]["status"], "delivered");
}
