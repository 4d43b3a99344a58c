//! Operational events end to end: what raises each one, who gets it (only endpoints that
//! name it, and the operators' instance), its signed body, that each occurrence is told once,
//! and auto-disable: a disabled endpoint's deliveries wait and go out once it is enabled.

use chrono::Duration;
use finhook_core::events::EventBody;
use finhook_core::secret::EndpointSecret;
use finhook_core::signing::{self, StandardHeaders};
use finhook_server::events::Pass;
use reqwest::Method;
use serde_json::{json, Value};

use super::{spawn_app, spawn_app_with};
use crate::helpers::*;

/// One events pass, as the server runs every second.
async fn pass(app: &TestApp) -> Pass {
    app.state.events.pass().await.expect("events pass")
}

fn id_of(endpoint: &Value) -> &str {
    endpoint["id"].as_str().expect("id")
}

async fn show(app: &TestApp, endpoint: &Value) -> Value {
    let (status, shown) =
        app.admin(Method::GET, &format!("/v1/instances/acme/endpoints/{}", id_of(endpoint)), None).await;
    assert_eq!(status, 200, "{shown}");
    shown
}

/// The event a request carried, after checking both signatures with `subscriber`'s secret.
fn event_of(got: &Received, subscriber: &Value) -> Value {
    let secret = EndpointSecret::parse(subscriber["secret"].as_str().expect("secret")).expect("secret");
    let body = &got.body;
    assert_eq!(
        signing::verify_flinks(std::slice::from_ref(&secret), got.header("flinks-authenticity-key"), body),
        Ok(())
    );
    let timestamp: i64 = got.header("webhook-timestamp").expect("timestamp").parse().expect("number");
    let headers = StandardHeaders {
        id: got.header("webhook-id"),
        timestamp: got.header("webhook-timestamp"),
        signature: got.header("webhook-signature"),
    };
    assert_eq!(signing::verify_standard(&[secret], headers, body, timestamp, 300), Ok(()));
    assert!(EventBody::parse(body).is_some(), "an event body");
    serde_json::from_slice(body).expect("json")
}

#[tokio::test]
async fn a_failing_endpoint_and_its_recovery_are_told_once_to_the_endpoints_that_name_them() {
    let app = spawn_app().await;
    let flaky = TestReceiver::start(&[Reply::Status(500); 5], Reply::Status(200)).await;
    let ops = TestReceiver::start(&[], Reply::Status(200)).await;
    let plain = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let failing = app.create_endpoint("acme", json!({ "url": flaky.url("/flaky") })).await;
    let watcher = app
        .create_endpoint(
            "acme",
            json!({ "url": ops.url("/ops"), "event_types": ["endpoint.failing", "endpoint.recovered"] }),
        )
        .await;
    assert_eq!(watcher["event_types"], json!(["endpoint.failing", "endpoint.recovered"]));
    app.create_endpoint("acme", json!({ "url": plain.url("/plain") })).await;

    for _ in 0..4 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    assert_eq!(app.deliver_due().await, 8, "four to each endpoint that takes callbacks; none to the watcher");
    assert_eq!(pass(&app).await, Pass::default(), "four failures are not yet failing");
    let run = show(&app, &failing).await["failing"].clone();
    assert_eq!(run["failed_attempts_in_row"], 4, "{run}");
    assert_eq!((run["last_status_code"].as_u64(), run["last_error_class"].as_str()), (Some(500), Some("http")));
    assert_eq!(show(&app, &watcher).await["failing"], Value::Null);

    app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2);
    assert_eq!(pass(&app).await, Pass { reported_failing: 1, disabled: 0, published: 1 });
    assert_eq!(pass(&app).await, Pass::default(), "a run is reported once");
    assert_eq!(app.deliver_due().await, 1);
    let told = ops.received();
    assert_eq!(told.len(), 1);
    let event = event_of(&told[0], &watcher);
    assert_eq!(event["type"], "endpoint.failing");
    assert_eq!((event["instance"].as_str(), event["endpoint_id"].as_str()), (Some("acme"), Some(id_of(&failing))));
    assert_eq!(event["at"], "2026-03-14T18:00:00Z");
    assert_eq!(event["data"]["failed_attempts_in_row"], 5, "{event}");
    assert_eq!(event["data"]["failing_since"], "2026-03-14T18:00:00.000Z");
    assert_eq!(
        (event["data"]["last_status_code"].as_u64(), event["data"]["last_error_class"].as_str()),
        (Some(500), Some("http"))
    );
    // Stored as a message of its own type, like any webhook.
    let listed = app.messages("acme", "?response_type=endpoint.failing").await;
    let listed = listed["data"].as_array().expect("data").clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(Some(listed[0]["id"].as_str().expect("id")), told[0].header("webhook-id"));
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let series =
        format!("finhook_endpoint_failed_attempts_in_row{{instance=\"acme\",endpoint=\"{}\"}} 5", id_of(&failing));
    assert!(metrics.contains(&series), "{metrics}");
    assert!(metrics.contains("finhook_events_published_total{type=\"endpoint.failing\"} 1"), "{metrics}");

    // The retries half an hour later succeed: the run ends, and it is told once.
    app.clock.advance(Duration::minutes(30));
    assert_eq!(app.deliver_due().await, 5);
    assert_eq!(pass(&app).await, Pass { reported_failing: 0, disabled: 0, published: 1 });
    assert_eq!(app.deliver_due().await, 1);
    let recovered = event_of(&ops.received()[1], &watcher);
    assert_eq!(recovered["type"], "endpoint.recovered");
    assert_eq!(recovered["at"], "2026-03-14T18:30:00Z");
    assert_eq!(recovered["data"]["failing_since"], event["data"]["failing_since"]);
    assert_eq!(show(&app, &failing).await["failing"], Value::Null);
    assert_eq!(pass(&app).await, Pass::default());
    // An endpoint without `event_types` takes every callback and no event.
    let plain_got = plain.received();
    assert_eq!(plain_got.len(), 5);
    assert!(plain_got.iter().all(|got| EventBody::parse(&got.body).is_none()));
}

#[tokio::test]
async fn a_delivery_out_of_attempts_is_told_and_an_events_own_delivery_running_out_is_not() {
    let app = spawn_app().await;
    let down = TestReceiver::start(&[], Reply::Status(503)).await;
    app.create_instance("acme").await;
    let endpoint = app
        .create_endpoint(
            "acme",
            json!({ "url": down.url("/callbacks"), "retry": { "max_attempts": 2, "interval_seconds": 60 } }),
        )
        .await;
    let watcher = app
        .create_endpoint(
            "acme",
            json!({ "url": down.url("/events"), "event_types": ["message.attempts_exhausted"], "retry": { "max_attempts": 1 } }),
        )
        .await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(pass(&app).await, Pass::default(), "one attempt is left");
    app.clock.advance(Duration::seconds(60));
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(pass(&app).await, Pass { reported_failing: 0, disabled: 0, published: 1 });
    assert_eq!(app.deliver_due().await, 1, "the event, to a watcher that fails too");
    assert_eq!(pass(&app).await, Pass::default(), "no event about an event");
    assert_eq!(app.deliver_due().await, 0);

    let got = down.received();
    assert_eq!(got.iter().map(|g| g.path.as_str()).collect::<Vec<_>>(), ["/callbacks", "/callbacks", "/events"]);
    let event = event_of(&got[2], &watcher);
    assert_eq!(event["type"], "message.attempts_exhausted");
    assert_eq!(
        (event["message_id"].as_str(), event["endpoint_id"].as_str()),
        (Some(id.as_str()), Some(id_of(&endpoint)))
    );
    assert_eq!(event["at"], "2026-03-14T18:01:00Z", "when the last attempt was made");
    let delivery = app.message("acme", &id).await["deliveries"][0].clone();
    assert_eq!(delivery["status"], "failed");
    assert_eq!(
        event["data"],
        json!({ "delivery_id": delivery["id"], "attempts": 2, "last_status_code": 503, "last_error_class": "http" })
    );
    let events = app.messages("acme", "?response_type=message.attempts_exhausted").await;
    assert_eq!(events["data"].as_array().expect("data").len(), 1);
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled_and_its_deliveries_wait_for_it() {
    let app = spawn_app().await;
    let target = TestReceiver::start(&[Reply::Status(500); 3], Reply::Status(200)).await;
    let ops = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint = app
        .create_endpoint(
            "acme",
            json!({ "url": target.url("/"), "retry": { "max_attempts": 3, "interval_seconds": 3600 } }),
        )
        .await;
    let watcher =
        app.create_endpoint("acme", json!({ "url": ops.url("/ops"), "event_types": ["endpoint.disabled"] })).await;
    let first = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    app.clock.advance(Duration::days(5) - Duration::hours(1));
    assert_eq!(pass(&app).await, Pass::default(), "not five days yet");
    let second = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2, "the first's retry and the second's first attempt, both failing");
    app.clock.advance(Duration::hours(2));
    assert_eq!(pass(&app).await, Pass { reported_failing: 0, disabled: 1, published: 1 });
    assert_eq!(pass(&app).await, Pass::default());

    let shown = show(&app, &endpoint).await;
    assert_eq!(
        (shown["enabled"].as_bool(), shown["auto_disabled_at"].as_str()),
        (Some(false), Some("2026-03-19T19:00:00Z"))
    );
    assert_eq!(app.deliver_due().await, 1, "only the event: the disabled endpoint's deliveries wait");
    let event = event_of(&ops.received()[0], &watcher);
    assert_eq!(
        (event["type"].as_str(), event["endpoint_id"].as_str()),
        (Some("endpoint.disabled"), Some(id_of(&endpoint)))
    );
    assert_eq!(event["data"]["failing_since"], "2026-03-14T18:00:00.000Z");
    assert_eq!(event["data"]["failed_attempts_in_row"], 3);
    for id in [&first, &second] {
        assert_eq!(app.message("acme", id).await["deliveries"][0]["status"], "pending", "waiting, not failed");
    }
    app.clock.advance(Duration::hours(2));
    assert_eq!(app.deliver_due().await, 0, "nothing is attempted while it is disabled");

    let path = format!("/v1/instances/acme/endpoints/{}", id_of(&endpoint));
    let (status, enabled) = app.admin(Method::PATCH, &path, Some(json!({ "enabled": true }))).await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!((enabled["auto_disabled_at"].clone(), enabled["failing"].clone()), (Value::Null, Value::Null));
    assert_eq!(app.deliver_due().await, 2);
    for id in [&first, &second] {
        assert_eq!(app.message("acme", id).await["deliveries"][0]["status"], "delivered");
    }
    assert_eq!(pass(&app).await, Pass::default(), "it was never reported failing, so no recovery either");
}

#[tokio::test]
async fn the_operators_instance_hears_every_instances_events() {
    let options = Options { operator_events_instance: Some("ops".into()), ..Options::default() };
    let app = spawn_app_with(options).await;
    let down = TestReceiver::start(&[], Reply::Status(502)).await;
    let pager = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_instance("ops").await;
    let failing = app.create_endpoint("acme", json!({ "url": down.url("/") })).await;
    let watcher =
        app.create_endpoint("ops", json!({ "url": pager.url("/"), "event_types": ["endpoint.failing"] })).await;
    for _ in 0..5 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    assert_eq!(app.deliver_due().await, 5);
    assert_eq!(pass(&app).await, Pass { reported_failing: 1, disabled: 0, published: 1 }, "acme takes no event");
    assert_eq!(app.deliver_due().await, 1);
    let event = event_of(&pager.received()[0], &watcher);
    assert_eq!((event["type"].as_str(), event["instance"].as_str()), (Some("endpoint.failing"), Some("acme")));
    assert_eq!(event["endpoint_id"].as_str(), Some(id_of(&failing)));
    assert_eq!(app.messages("acme", "").await["data"].as_array().expect("data").len(), 5, "callbacks only");
    assert_eq!(app.messages("ops", "?response_type=endpoint.failing").await["data"].as_array().expect("d").len(), 1);
}

#[tokio::test]
async fn event_names_are_checked_where_types_are_named() {
    let app = spawn_app().await;
    app.create_instance("acme").await;
    let path = "/v1/instances/acme/endpoints";
    let body = json!({ "url": "https://hooks.example.com/", "event_types": ["KYC", "endpoint.exploded"] });
    let (status, problem) = app.admin(Method::POST, path, Some(body)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["path"], "$.event_types[1]");
    let detail = problem["errors"][0]["message"].as_str().unwrap_or_default().to_string() + &problem.to_string();
    assert!(detail.contains("endpoint.failing") && detail.contains("certificate.expiring"), "{problem}");
    let (status, problem) =
        app.admin(Method::GET, "/v1/instances/acme/messages?response_type=endpoint.exploded", None).await;
    assert_eq!(status, 422, "{problem}");
    let all = [
        "KYC",
        "endpoint.failing",
        "endpoint.disabled",
        "endpoint.recovered",
        "message.attempts_exhausted",
        "certificate.expiring",
    ];
    let endpoint =
        app.create_endpoint("acme", json!({ "url": "https://hooks.example.com/", "event_types": all })).await;
    assert_eq!(endpoint["event_types"], json!(all));
    assert_eq!((endpoint["failing"].clone(), endpoint["auto_disabled_at"].clone()), (Value::Null, Value::Null));
}
