//! The delivery worker end to end: schedule, bytes, signatures, success rule, failure
//! classes, isolation between endpoints, and changes made between attempts.

use chrono::DateTime;
use finhook_core::secret::EndpointSecret;
use finhook_core::signing::{self, StandardHeaders};
use reqwest::Method;
use serde_json::{json, Value};

use super::{spawn_app, spawn_app_with, BACKEND};
use crate::helpers::*;

fn secret_of(endpoint: &Value) -> EndpointSecret {
    EndpointSecret::parse(endpoint["secret"].as_str().expect("secret")).expect("valid secret")
}

fn attempts_of(message: &Value) -> Vec<Value> {
    message["deliveries"][0]["attempts"].as_array().expect("attempts").clone()
}

#[tokio::test]
async fn ten_attempts_thirty_minutes_apart_then_failed_and_no_eleventh() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(500)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/hook") })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;

    for attempt in 1..=10 {
        assert_eq!(app.deliver_due().await, 1, "attempt {attempt} is due");
        assert_eq!(app.deliver_due().await, 0, "nothing more is due before 30 minutes pass");
        app.clock.advance(chrono::Duration::minutes(29));
        assert_eq!(app.deliver_due().await, 0, "still not due after 29 minutes");
        app.clock.advance(chrono::Duration::minutes(1));
    }
    app.clock.advance(chrono::Duration::days(2));
    assert_eq!(app.deliver_due().await, 0, "the 11th attempt is never made");

    let message = app.message("acme", &id).await;
    let delivery = &message["deliveries"][0];
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts_made"], 10);
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    let starts: Vec<i64> = attempts_of(&message)
        .iter()
        .map(|a| DateTime::parse_from_rfc3339(a["started_at"].as_str().expect("time")).expect("rfc3339").timestamp())
        .collect();
    assert_eq!(starts.len(), 10);
    assert_eq!(starts[0], t0().timestamp(), "the first attempt is made at once");
    assert!(starts.windows(2).all(|w| w[1] - w[0] == 1800), "{starts:?}");
    for (n, attempt) in attempts_of(&message).iter().enumerate() {
        assert_eq!(attempt["attempt_number"], n + 1);
        assert_eq!(attempt["status_code"], 500);
        assert_eq!(attempt["error_class"], "http");
        assert_eq!(attempt["response_excerpt"], "reply 500");
    }
    let received = receiver.received();
    assert_eq!(received.len(), 10);
    assert!(received.iter().all(|r| r.header("webhook-id") == Some(id.as_str())), "same webhook-id on every attempt");
    let stamps: Vec<i64> =
        received.iter().map(|r| r.header("webhook-timestamp").expect("ts").parse().expect("int")).collect();
    assert_eq!(stamps, starts, "webhook-timestamp is each attempt's time");
}

#[tokio::test]
async fn the_exact_bytes_arrive_with_every_header_and_both_signatures() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": receiver.url("/flinks/kyc") })).await;
    // Odd spacing and key order must survive: the body is never re-serialised.
    let body =
        b"{ \"Tag\":\"t\",  \"ResponseType\" : \"KYC\",\"Login\":{\"Id\":\"L-1\"}, \"Amount\": 1.50 }\n".to_vec();
    let id = app.ingest("acme", body.clone()).await;
    assert_eq!(app.deliver_due().await, 1);

    let got = &receiver.wait_for(1).await[0];
    assert_eq!(got.path, "/flinks/kyc");
    assert_eq!(got.body.as_ref(), body.as_slice(), "exact bytes");
    assert_eq!(got.header("content-type"), Some("application/json"));
    assert_eq!(got.header("user-agent"), Some(concat!("finhook/", env!("CARGO_PKG_VERSION"))));
    assert_eq!(got.header("webhook-id"), Some(id.as_str()));
    assert_eq!(got.header("webhook-timestamp"), Some(t0().timestamp().to_string().as_str()));

    let secret = secret_of(&endpoint);
    assert_eq!(
        signing::verify_flinks(std::slice::from_ref(&secret), got.header("flinks-authenticity-key"), &body),
        Ok(())
    );
    let headers = StandardHeaders {
        id: got.header("webhook-id"),
        timestamp: got.header("webhook-timestamp"),
        signature: got.header("webhook-signature"),
    };
    assert_eq!(signing::verify_standard(&[secret], headers, &body, t0().timestamp(), 300), Ok(()));
    // An independent check of the Flinks scheme: HMAC-SHA256 over the body, keyed with the secret string.
    let expected = {
        use base64::Engine;
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(endpoint["secret"].as_str().expect("s").as_bytes())
            .expect("key");
        mac.update(&body);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    assert_eq!(got.header("flinks-authenticity-key"), Some(expected.as_str()));

    let message = app.message("acme", &id).await;
    assert_eq!(message["deliveries"][0]["status"], "delivered");
    assert_eq!(attempts_of(&message)[0]["succeeded"], true);
    assert_eq!(message["payload"]["Amount"].to_string(), "1.50");
}

#[tokio::test]
async fn only_200_succeeds_by_default_and_any_2xx_is_opt_in() {
    let app = spawn_app().await;
    let strict =
        TestReceiver::start(&[Reply::Status(201), Reply::Status(204), Reply::Status(302)], Reply::Status(200)).await;
    let lenient = TestReceiver::start(&[], Reply::Status(204)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": strict.url("/"), "retry": { "interval_seconds": 60 } })).await;
    app.create_endpoint("acme", json!({ "url": lenient.url("/"), "success": "any_2xx" })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;

    for _ in 0..4 {
        app.deliver_due().await;
        app.clock.advance(chrono::Duration::seconds(60));
    }
    let message = app.message("acme", &id).await;
    let deliveries = message["deliveries"].as_array().expect("deliveries");
    let statuses: Vec<Vec<Value>> = deliveries
        .iter()
        .map(|d| d["attempts"].as_array().expect("a").iter().map(|a| a["status_code"].clone()).collect())
        .collect();
    assert!(statuses.contains(&vec![json!(201), json!(204), json!(302), json!(200)]), "{statuses:?}");
    assert!(statuses.contains(&vec![json!(204)]), "{statuses:?}");
    assert!(deliveries.iter().all(|d| d["status"] == "delivered"));
    assert_eq!(strict.received().len(), 4, "a 302 is a failure, never followed");
}

#[tokio::test]
async fn connection_failures_are_classed_and_retried() {
    let app = spawn_app().await;
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    // A server that accepts and resets every connection.
    let resetter = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let reset_addr = resetter.local_addr().expect("addr");
    let reset_task = tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((socket, _)) = resetter.accept().await else { return };
            let _ = socket.set_zero_linger();
            drop(socket);
        }
    });
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": format!("http://{closed}/"), "event_types": ["KYC"] })).await;
    app.create_endpoint("acme", json!({ "url": format!("http://{reset_addr}/"), "event_types": ["KYC"] })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2);

    let message = app.message("acme", &id).await;
    let mut classes: Vec<String> = message["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            assert_eq!(d["status"], "pending", "a failed attempt is retried");
            assert_eq!(d["attempts"][0]["status_code"], Value::Null);
            assert!(d["attempts"][0]["error_detail"].as_str().is_some_and(|s| !s.is_empty()));
            d["attempts"][0]["error_class"].as_str().expect("class").to_string()
        })
        .collect();
    classes.sort();
    assert_eq!(classes, ["connect", "connect"], "refused and reset connections");
    reset_task.abort();
}

/// Overwrites an endpoint's stored secret with a value the secrets key cannot open.
async fn break_sealed_secret(app: &TestApp, endpoint_id: &str) {
    use sqlx::Connection;
    let update = "UPDATE endpoint_secrets SET secret = 'enc1:not-a-sealed-secret' WHERE endpoint_id = $1";
    match BACKEND {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(&app.database_url()).await.expect("open db");
            sqlx::query(update).bind(endpoint_id).execute(&mut connection).await.expect("update");
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&app.database_url()).await.expect("connect");
            sqlx::query(update).bind(endpoint_id).execute(&mut connection).await.expect("update");
        }
    }
}

#[tokio::test]
async fn an_endpoint_that_cannot_be_read_does_not_stop_the_others() {
    let app = spawn_app().await;
    let broken = TestReceiver::start(&[], Reply::Status(200)).await;
    let healthy = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": broken.url("/") })).await;
    app.create_endpoint("acme", json!({ "url": healthy.url("/") })).await;
    break_sealed_secret(&app, endpoint["id"].as_str().expect("id")).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1, "only the healthy endpoint's delivery is attempted");
    assert_eq!(healthy.received().len(), 1);
    assert!(broken.received().is_empty());
    let message = app.message("acme", &id).await;
    let statuses: Vec<&str> =
        message["deliveries"].as_array().expect("deliveries").iter().filter_map(|d| d["status"].as_str()).collect();
    assert!(statuses.contains(&"delivered") && statuses.contains(&"pending"), "{statuses:?}");
}

#[tokio::test]
async fn a_timeout_is_a_failed_attempt_of_class_timeout() {
    let app = spawn_app_with(Options { timeout_seconds: 1, ..Options::default() }).await;
    let hanging = TestReceiver::start(&[], Reply::Hang).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": hanging.url("/") })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let attempt = &attempts_of(&app.message("acme", &id).await)[0];
    assert_eq!(attempt["error_class"], "timeout");
    assert!(attempt["latency_ms"].as_u64().expect("latency") >= 900);
}

#[tokio::test]
async fn the_url_and_secrets_are_read_at_attempt_time() {
    let app = spawn_app().await;
    let first = TestReceiver::start(&[], Reply::Status(503)).await;
    let second = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": first.url("/") })).await;
    let endpoint_path = format!("/v1/instances/acme/endpoints/{}", endpoint["id"].as_str().expect("id"));
    let body = fixture("get_accounts_detail.json");
    let id = app.ingest("acme", body.clone()).await;
    app.deliver_due().await;
    assert_eq!(first.received().len(), 1);

    let (status, _) = app.admin(Method::PATCH, &endpoint_path, Some(json!({ "url": second.url("/moved") }))).await;
    assert_eq!(status, 200);
    let (status, rotated) = app.admin(Method::POST, &format!("{endpoint_path}/rotate-secret"), None).await;
    assert_eq!(status, 200);
    app.clock.advance(chrono::Duration::minutes(30));
    app.deliver_due().await;

    let got = &second.wait_for(1).await[0];
    assert_eq!(got.path, "/moved");
    let old = secret_of(&endpoint);
    let new = secret_of(&rotated);
    assert_ne!(old, new);
    // The Flinks header carries the new secret; Standard Webhooks carries both during the overlap.
    assert_eq!(
        signing::verify_flinks(std::slice::from_ref(&new), got.header("flinks-authenticity-key"), &body),
        Ok(())
    );
    let signatures = got.header("webhook-signature").expect("sig");
    assert_eq!(signatures.split(' ').count(), 2);
    let now = app.clock_now_unix();
    for secret in [old.clone(), new] {
        let headers =
            StandardHeaders { id: Some(&id), timestamp: got.header("webhook-timestamp"), signature: Some(signatures) };
        assert_eq!(signing::verify_standard(&[secret], headers, &body, now, 300), Ok(()));
    }
    // After 24 hours the old secret no longer signs.
    let third = app.ingest("acme", fixture("kyc.json")).await;
    app.clock.advance(chrono::Duration::hours(25));
    app.deliver_due().await;
    let last = second.wait_for(2).await.pop().expect("request");
    assert_eq!(last.header("webhook-id"), Some(third.as_str()));
    assert_eq!(last.header("webhook-signature").expect("sig").split(' ').count(), 1);
}

trait ClockNow {
    fn clock_now_unix(&self) -> i64;
}

impl ClockNow for TestApp {
    fn clock_now_unix(&self) -> i64 {
        use finhook_server::clock::Clock;
        self.clock.now().timestamp()
    }
}

#[tokio::test]
async fn disabled_endpoints_pause_and_deleted_ones_cancel() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let paused = app.create_endpoint("acme", json!({ "url": receiver.url("/paused") })).await;
    let doomed = app.create_endpoint("acme", json!({ "url": receiver.url("/doomed") })).await;
    let path = |e: &Value| format!("/v1/instances/acme/endpoints/{}", e["id"].as_str().expect("id"));
    app.admin(Method::PATCH, &path(&paused), Some(json!({ "enabled": false }))).await;
    app.admin(Method::PATCH, &path(&doomed), Some(json!({ "enabled": false }))).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.messages("acme", "").await["data"].as_array().expect("data").len(), 1);
    // Disabled endpoints get no delivery for new messages; redeliver to a named one queues it.
    assert_eq!(app.message("acme", &id).await["deliveries"].as_array().expect("d").len(), 0);
    for endpoint in [&paused, &doomed] {
        let (status, _) = app
            .admin(
                Method::POST,
                &format!("/v1/instances/acme/messages/{id}/redeliver"),
                Some(json!({ "endpoint_id": endpoint["id"] })),
            )
            .await;
        assert_eq!(status, 202);
    }
    assert_eq!(app.deliver_due().await, 0, "paused while disabled");
    let (status, _) = app.admin(Method::DELETE, &path(&doomed), None).await;
    assert_eq!(status, 204);
    app.admin(Method::PATCH, &path(&paused), Some(json!({ "enabled": true }))).await;
    assert_eq!(app.deliver_due().await, 1);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/paused");
    let mut statuses: Vec<String> = app.message("acme", &id).await["deliveries"]
        .as_array()
        .expect("d")
        .iter()
        .map(|d| d["status"].as_str().expect("s").to_string())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["cancelled", "delivered"]);
}

#[tokio::test]
async fn redeliver_sends_the_same_message_again_and_event_types_filter() {
    let app = spawn_app().await;
    let kyc_only = TestReceiver::start(&[], Reply::Status(200)).await;
    let everything = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": kyc_only.url("/"), "event_types": ["KYC"] })).await;
    app.create_endpoint("acme", json!({ "url": everything.url("/") })).await;
    let kyc = app.ingest("acme", fixture("kyc.json")).await;
    app.ingest("acme", fixture("get_accounts_detail.json")).await;
    app.ingest("acme", fixture("investments.json")).await;
    assert_eq!(app.deliver_due().await, 4);
    assert_eq!(kyc_only.received().len(), 1);
    assert_eq!(everything.received().len(), 3);

    let (status, body) = app.admin(Method::POST, &format!("/v1/instances/acme/messages/{kyc}/redeliver"), None).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["deliveries"].as_array().expect("d").len(), 2);
    assert_eq!(app.deliver_due().await, 2);
    let again = kyc_only.received();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].header("webhook-id"), again[1].header("webhook-id"));
    assert_eq!(again[0].body, again[1].body);
}

/// Receivers that answer `200` and then misbehave: one sends a 64 MiB body, one trickles a
/// byte every 100 ms without end. The status decides the attempt; finhook reads at most
/// the excerpt (1 KiB) and gives up on the rest at the delivery timeout, records each
/// attempt once, and sends nothing again.
#[tokio::test]
async fn a_huge_or_trickling_answer_is_read_no_further_than_its_excerpt() {
    let app = spawn_app_with(Options { timeout_seconds: 1, ..Options::default() }).await;
    let router = axum::Router::new()
        .route(
            "/huge",
            axum::routing::post(|| async {
                let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
                let chunks = tokio_stream::iter((0..1024).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
                (axum::http::StatusCode::OK, axum::body::Body::from_stream(chunks))
            }),
        )
        .route(
            "/trickle",
            axum::routing::post(|| async {
                use tokio_stream::StreamExt;
                let ticks = tokio::time::interval(std::time::Duration::from_millis(100));
                let drip = tokio_stream::wrappers::IntervalStream::new(ticks)
                    .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"y")));
                (axum::http::StatusCode::OK, axum::body::Body::from_stream(drip))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    app.create_instance("acme").await;
    for path in ["/huge", "/trickle"] {
        app.create_endpoint("acme", json!({ "url": format!("{base}{path}") })).await;
    }
    let id = app.ingest("acme", fixture("kyc.json")).await;
    let started = std::time::Instant::now();
    assert_eq!(app.deliver_due().await, 2);
    // The trickle is cut at the 1 s timeout; generous room for a slow machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    app.clock.advance(chrono::Duration::hours(2));
    assert_eq!(app.deliver_due().await, 0, "recorded once, never sent again");
    let message = app.message("acme", &id).await;
    for delivery in message["deliveries"].as_array().expect("deliveries") {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        let attempts = delivery["attempts"].as_array().expect("attempts");
        assert_eq!(attempts.len(), 1);
        let bytes = attempts[0]["response_bytes"].as_u64().expect("response_bytes");
        assert!((1..=1024).contains(&bytes), "read {bytes} bytes of the answer");
    }
    server.abort();
}

/// The clock jumps back two hours, then forward three days: a retry waiting for its time
/// is neither lost nor made twice, and nothing fires before its time on the new clock.
#[tokio::test]
async fn a_clock_jump_either_way_loses_nothing_and_sends_nothing_twice() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(503)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1, "the first attempt, refused");

    app.clock.advance(chrono::Duration::hours(-2));
    assert_eq!(app.deliver_due().await, 0, "the retry is due in 30 minutes of the old clock");
    app.clock.advance(chrono::Duration::minutes(149));
    assert_eq!(app.deliver_due().await, 0, "one minute before its time");
    app.clock.advance(chrono::Duration::days(3));
    assert_eq!(app.deliver_due().await, 1, "the retry, once");
    assert_eq!(app.deliver_due().await, 0);
    let message = app.message("acme", &id).await;
    assert_eq!(message["deliveries"][0]["status"], "delivered");
    assert_eq!(attempts_of(&message).len(), 2);
    assert_eq!(receiver.received().len(), 2);
}

/// A message's state at an endpoint is its latest delivery's: once a redelivery succeeds,
/// nothing counts it as failed any more (the status filter, the gauges); the failed round
/// stays as history, marked superseded. Redelivering while a round waits for its retry
/// cancels that round, so the receiver does not get it twice.
#[tokio::test]
async fn a_message_is_in_the_state_of_its_latest_delivery_everywhere() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(500), Reply::Status(500)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint =
        app.create_endpoint("acme", json!({ "url": receiver.url("/"), "retry": { "max_attempts": 1 } })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let count = |page: Value| page["data"].as_array().expect("data").len();
    assert_eq!(count(app.messages("acme", "?status=failed").await), 1);
    let gauge = |metrics: &str, status: &str| {
        let series = format!("finhook_deliveries{{status=\"{status}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(series.as_str())?.trim().parse::<i64>().ok()).expect("gauge")
    };
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("m").text().await.expect("text");
    assert_eq!(gauge(&metrics, "failed"), 1);

    let (status, _) = app.admin(Method::POST, &format!("/v1/instances/acme/messages/{id}/redeliver"), None).await;
    assert_eq!(status, 202);
    assert_eq!(app.deliver_due().await, 1, "the second round fails too (500)");
    let (status, _) = app.admin(Method::POST, &format!("/v1/instances/acme/messages/{id}/redeliver"), None).await;
    assert_eq!(status, 202);
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(count(app.messages("acme", "?status=failed").await), 0, "delivered now");
    assert_eq!(count(app.messages("acme", "?status=delivered").await), 1);
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("m").text().await.expect("text");
    assert_eq!((gauge(&metrics, "failed"), gauge(&metrics, "delivered")), (0, 1));
    let deliveries = app.message("acme", &id).await["deliveries"].as_array().expect("d").clone();
    let rounds: Vec<(&str, bool)> =
        deliveries.iter().map(|d| (d["status"].as_str().expect("s"), d["superseded"].as_bool().expect("b"))).collect();
    assert_eq!(rounds, [("failed", true), ("failed", true), ("delivered", false)], "history kept");

    // A round waiting for its retry is cancelled by a redelivery: one copy, not two.
    let path = format!("/v1/instances/acme/endpoints/{}", endpoint["id"].as_str().expect("id"));
    app.admin(Method::PATCH, &path, Some(json!({ "retry": { "max_attempts": 3 } }))).await;
    let slow = TestReceiver::start(&[Reply::Status(503)], Reply::Status(200)).await;
    app.admin(Method::PATCH, &path, Some(json!({ "url": slow.url("/") }))).await;
    let second = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1, "503: a retry in 30 minutes");
    let (status, _) = app.admin(Method::POST, &format!("/v1/instances/acme/messages/{second}/redeliver"), None).await;
    assert_eq!(status, 202);
    assert_eq!(app.deliver_due().await, 1);
    app.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(app.deliver_due().await, 0, "the cancelled round's retry is not made");
    assert_eq!(slow.received().len(), 2);
    let rounds = app.message("acme", &second).await["deliveries"].clone();
    assert_eq!((rounds[0]["status"].as_str(), rounds[0]["superseded"].as_bool()), (Some("cancelled"), Some(true)));
    assert_eq!(rounds[0]["next_attempt_at"], Value::Null);
    assert_eq!(count(app.messages("acme", "?status=cancelled").await), 0, "a superseded round says nothing");
}
