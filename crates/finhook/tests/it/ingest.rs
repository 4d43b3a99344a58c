//! Ingest: every bad input gets a precise problem+json answer and stores nothing;
//! idempotency keys never make a second message.

use reqwest::Method;
use serde_json::{json, Value};

use super::{spawn_app, spawn_app_with};
use crate::helpers::*;

/// Everything the instance holds, as the API shows it.
async fn snapshot(app: &TestApp) -> Value {
    let messages = app.messages("acme", "").await;
    json!({ "messages": messages["data"] })
}

async fn expect_problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "status {status}"
    );
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().is_some_and(|t| t.starts_with("urn:finhook:problem:")));
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    (status, body)
}

#[tokio::test]
async fn every_bad_body_gets_a_precise_4xx_and_stores_nothing() {
    let app = spawn_app_with(Options { max_body_bytes: 8 * 1024, ..Options::default() }).await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let before = snapshot(&app).await;

    let deep =
        format!("{{\"ResponseType\":\"KYC\",\"Login\":{{\"Id\":\"x\"}},\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
    let big = format!("{{\"ResponseType\":\"KYC\",\"Login\":{{\"Id\":\"x\"}},\"pad\":\"{}\"}}", "a".repeat(9000));
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        ("not JSON", b"ResponseType=KYC".to_vec(), 400, None),
        ("truncated JSON", b"{\"ResponseType\":\"KYC\",".to_vec(), 400, None),
        ("empty body", Vec::new(), 400, None),
        ("an array", b"[{\"ResponseType\":\"KYC\"}]".to_vec(), 400, None),
        ("a string", b"\"KYC\"".to_vec(), 400, None),
        ("too deep", deep.into_bytes(), 400, None),
        ("no ResponseType", b"{\"Login\":{\"Id\":\"x\"}}".to_vec(), 422, Some("$.ResponseType")),
        ("unknown ResponseType", b"{\"ResponseType\":\"PayEvent\",\"Login\":{\"Id\":\"x\"}}".to_vec(), 422, Some("$.ResponseType")),
        ("KYC without Login", b"{\"ResponseType\":\"KYC\"}".to_vec(), 422, Some("$.Login")),
        ("KYC without Login.Id", b"{\"ResponseType\":\"KYC\",\"Login\":{\"Username\":\"u\"}}".to_vec(), 422, Some("$.Login.Id")),
        ("GetAccountsDetail without Login.Id", b"{\"ResponseType\":\"GetAccountsDetail\",\"Login\":{}}".to_vec(), 422, Some("$.Login.Id")),
        (
            "money as a list",
            b"{\"ResponseType\":\"GetAccountsDetail\",\"Login\":{\"Id\":\"x\"},\"Accounts\":[{\"Balance\":{\"Current\":[1]}}]}".to_vec(),
            422,
            Some("$.Accounts[0].Balance.Current"),
        ),
        ("too large", big.into_bytes(), 413, None),
    ];
    for (name, body, expected, path) in cases {
        let (status, problem) =
            expect_problem(app.ingest_raw("acme", body, Some(&format!("key-{}", name.replace(' ', "-")))).await).await;
        assert_eq!(status, expected, "{name}: {problem}");
        if let Some(path) = path {
            assert_eq!(problem["errors"][0]["path"], path, "{name}: {problem}");
        }
    }
    assert_eq!(snapshot(&app).await, before, "nothing was stored");
    assert_eq!(app.deliver_due().await, 0, "nothing was scheduled");

    // The same keys are still free: a failed request never claims its Idempotency-Key.
    let ok = app.ingest_raw("acme", fixture("kyc.json"), Some("key-not-JSON")).await;
    assert_eq!(ok.status().as_u16(), 202);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_refused_while_streaming() {
    let app = spawn_app_with(Options { max_body_bytes: 1024, ..Options::default() }).await;
    app.create_instance("acme").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..64).map(|_| Ok(vec![b' '; 64])).collect();
    let body = reqwest::Body::wrap_stream(futures_stream(chunks));
    let response = app
        .http
        .post(app.url("/v1/instances/acme/callbacks"))
        .bearer_auth(ADMIN_KEY)
        .body(body)
        .send()
        .await
        .expect("send");
    let (status, _) = expect_problem(response).await;
    assert_eq!(status, 413);
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn an_idempotency_key_never_makes_a_second_message() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;

    let first = app.ingest_raw("acme", fixture("kyc.json"), Some("flinks-req-1")).await;
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().await.expect("json");
    let again = app.ingest_raw("acme", fixture("kyc.json"), Some("flinks-req-1")).await;
    assert_eq!(again.status().as_u16(), 202);
    assert_eq!(again.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let again: Value = again.json().await.expect("json");
    assert_eq!(first["message_id"], again["message_id"]);

    let (status, problem) =
        expect_problem(app.ingest_raw("acme", fixture("get_accounts_detail.json"), Some("flinks-req-1")).await).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(app.messages("acme", "").await["data"].as_array().expect("data").len(), 1);
    assert_eq!(app.deliver_due().await, 1, "one delivery, not two");

    // Without a key, each POST is a new message.
    app.ingest("acme", fixture("kyc.json")).await;
    app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.messages("acme", "").await["data"].as_array().expect("data").len(), 3);
    let (status, _) =
        expect_problem(app.ingest_raw("acme", fixture("kyc.json"), Some("bad key with spaces")).await).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn keys_are_required_and_scoped_to_their_instance() {
    let app = spawn_app().await;
    let acme_key = app.create_instance("acme").await;
    let other_key = app.create_instance("other").await;
    let url = app.url("/v1/instances/acme/callbacks");

    let response = app.http.post(&url).body(fixture("kyc.json")).send().await.expect("send");
    let (status, _) = expect_problem(response).await;
    assert_eq!(status, 401);
    let response = app.http.post(&url).bearer_auth("fhk_wrong").body(fixture("kyc.json")).send().await.expect("send");
    assert_eq!(expect_problem(response).await.0, 401);
    let response = app.http.post(&url).bearer_auth(&other_key).body(fixture("kyc.json")).send().await.expect("send");
    assert_eq!(expect_problem(response).await.0, 404, "another instance's key cannot even see acme");
    let response = app.http.post(&url).bearer_auth(&acme_key).body(fixture("kyc.json")).send().await.expect("send");
    assert_eq!(response.status().as_u16(), 202);

    let (status, _) = app.call(Method::POST, "/v1/instances", &acme_key, Some(json!({ "name": "mine" }))).await;
    assert_eq!(status, 403, "only the admin creates instances");
    let (status, listed) = app.call(Method::GET, "/v1/instances", &acme_key, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"].as_array().expect("list").len(), 1, "an instance key sees only its instance");
    assert_eq!(app.messages("other", "").await["data"].as_array().expect("data").len(), 0);
}

/// One instance over its rate gets `429` with `Retry-After` and stores nothing; another
/// instance is not slowed; the bucket refills with time, up to the burst.
#[tokio::test]
async fn an_instance_over_its_rate_gets_429_and_the_others_do_not_notice() {
    let app = spawn_app_with(Options { ingest_rate: Some((2, 3)), ..Options::default() }).await;
    app.create_instance("acme").await;
    app.create_instance("quiet").await;
    for _ in 0..3 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    let refused = app.ingest_raw("acme", fixture("kyc.json"), None).await;
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let (status, problem) = expect_problem(refused).await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["type"], "urn:finhook:problem:rate-limited");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("2 callbacks per second")), "{problem}");
    assert_eq!(app.messages("acme", "").await["data"].as_array().expect("data").len(), 3, "nothing stored");
    app.ingest("quiet", fixture("kyc.json")).await;

    app.clock.advance(chrono::Duration::milliseconds(500));
    app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.ingest_raw("acme", fixture("kyc.json"), None).await.status().as_u16(), 429);
    app.clock.advance(chrono::Duration::hours(1));
    for _ in 0..3 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    assert_eq!(app.ingest_raw("acme", fixture("kyc.json"), None).await.status().as_u16(), 429, "the burst, not more");
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("finhook_callbacks_rejected_total{status=\"429\"} 3"), "{metrics}");
}

#[tokio::test]
async fn hostile_bodies_get_a_precise_4xx_store_nothing_and_leave_the_server_healthy() {
    let app = spawn_app().await;
    app.create_instance("acme").await;
    let before = snapshot(&app).await;
    let kyc = |rest: &str| format!("{{\"ResponseType\":\"KYC\",\"Login\":{{\"Id\":\"c91cd0cf\"}}{rest}}}").into_bytes();
    let mut invalid_utf8 = kyc(",\"Tag\":\"ab");
    invalid_utf8.truncate(invalid_utf8.len() - 1);
    invalid_utf8.extend_from_slice(b"\xff\xfe\"}");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "duplicate ResponseType",
            b"{\"ResponseType\":\"KYC\",\"ResponseType\":\"Investments\",\"Login\":{\"Id\":\"x\"}}".to_vec(),
            422,
            "$.ResponseType",
        ),
        (
            "duplicate Login.Id",
            b"{\"ResponseType\":\"KYC\",\"Login\":{\"Id\":\"a\",\"Id\":\"b\"}}".to_vec(),
            422,
            "$.Login.Id",
        ),
        ("duplicate Login", kyc(",\"Login\":{\"Id\":\"other\"}"), 422, "$.Login"),
        // Numbers JSON parsers cannot hold are refused as JSON, with their position.
        ("a number past f64", kyc(",\"HttpStatusCode\":1e999999"), 400, ""),
        ("a 10,000-digit number", kyc(&format!(",\"HttpStatusCode\":{}", "9".repeat(10_000))), 400, ""),
        ("invalid UTF-8 in a string", invalid_utf8, 400, ""),
        ("a raw control character in a string", kyc(",\"Tag\":\"a\u{1}b\""), 400, ""),
        (
            "NUL in the LoginId",
            b"{\"ResponseType\":\"KYC\",\"Login\":{\"Id\":\"a\\u0000b\"}}".to_vec(),
            422,
            "$.Login.Id",
        ),
        (
            "a 100,000-character LoginId",
            format!("{{\"ResponseType\":\"KYC\",\"Login\":{{\"Id\":\"{}\"}}}}", "x".repeat(100_000)).into_bytes(),
            422,
            "$.Login.Id",
        ),
        ("a 1,000,000-character Tag", kyc(&format!(",\"Tag\":\"{}\"", "t".repeat(1_000_000))), 422, "$.Tag"),
        ("a lone surrogate escape", kyc(",\"Tag\":\"\\ud800\""), 400, ""),
    ];
    for (name, body, expected, path) in cases {
        let (status, problem) = expect_problem(app.ingest_raw("acme", body, None).await).await;
        assert_eq!(status, expected, "{name}: {problem}");
        if !path.is_empty() {
            assert_eq!(problem["errors"][0]["path"], path, "{name}: {problem}");
        }
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.len() < 1_000 && !detail.contains("serde"), "{name}: a short detail in our words: {detail}");
        if status == 400 {
            assert!(detail.contains("line 1, column"), "{name}: says where: {detail}");
        }
    }
    assert_eq!(snapshot(&app).await, before, "nothing was stored");
    assert_eq!(app.health().await.0, 200, "the server is healthy");
    let ok = app.ingest_raw("acme", fixture("kyc.json"), None).await;
    assert_eq!(ok.status().as_u16(), 202);
}

#[tokio::test]
async fn an_instance_over_its_storage_quota_gets_507_and_the_others_do_not_notice() {
    let kyc = fixture("kyc.json");
    let quota = 3 * kyc.len() as u64 + 100;
    let app = spawn_app_with(Options { instance_quota_bytes: Some(quota), ..Options::default() }).await;
    app.create_instance("acme").await;
    app.create_instance("quiet").await;
    for _ in 0..3 {
        app.ingest("acme", kyc.clone()).await;
    }
    let before = snapshot(&app).await;
    let refused = app.ingest_raw("acme", kyc.clone(), None).await;
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("30"));
    let (status, problem) = expect_problem(refused).await;
    assert_eq!(status, 507, "{problem}");
    assert_eq!(problem["type"], "urn:finhook:problem:quota-exceeded");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("stores {} bytes", 3 * kyc.len())) && detail.contains("nothing was stored"),
        "{detail}"
    );
    assert_eq!(snapshot(&app).await, before, "nothing was stored");
    let (_, acme) = app.admin(Method::GET, "/v1/instances/acme", None).await;
    assert_eq!(acme["stored_bytes"], 3 * kyc.len() as u64);
    // A small callback that still fits is taken; the other tenant is untouched.
    let small = br#"{"ResponseType":"KYC","Login":{"Id":"c91cd0cf"}}"#.to_vec();
    assert_eq!(app.ingest_raw("acme", small, None).await.status().as_u16(), 202);
    assert_eq!(app.ingest_raw("quiet", kyc, None).await.status().as_u16(), 202);
}

#[tokio::test]
async fn a_callback_no_endpoint_takes_is_stored_and_the_answer_says_so() {
    let app = spawn_app().await;
    app.create_instance("acme").await;
    let response = app.ingest_raw("acme", fixture("kyc.json"), None).await;
    assert_eq!(response.status().as_u16(), 202);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["deliveries"], 0);
    let warning = body["warning"].as_str().expect("a warning");
    assert!(warning.contains("no enabled endpoint of this instance takes KYC"), "{warning}");

    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/"), "event_types": ["GetAccountsDetail"] })).await;
    let kyc: Value = app.ingest_raw("acme", fixture("kyc.json"), None).await.json().await.expect("json");
    assert!(kyc["warning"].as_str().is_some(), "an endpoint that takes other types does not count: {kyc}");
    let taken: Value =
        app.ingest_raw("acme", fixture("get_accounts_detail.json"), None).await.json().await.expect("json");
    assert_eq!((taken["deliveries"].as_u64(), taken.get("warning")), (Some(1), None), "{taken}");
}
