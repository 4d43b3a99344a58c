//! The management API: instances, endpoints, message listings and the sender-side
//! conciliation by LoginId.

use reqwest::Method;
use serde_json::{json, Value};

use super::{spawn_app, BACKEND};
use crate::helpers::*;

#[tokio::test]
async fn health_and_unknown_routes() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(response.status().as_u16(), 200);
    let (status, body) = app.admin(Method::GET, "/v2/nothing", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "urn:finhook:problem:not-found");
}

#[tokio::test]
async fn instances_are_validated_and_unique() {
    let app = spawn_app().await;
    let (status, created) =
        app.admin(Method::POST, "/v1/instances", Some(json!({ "name": "acme-2", "mode": "sandbox" }))).await;
    assert_eq!(status, 201);
    assert_eq!(created["mode"], "sandbox");
    assert_eq!(created["customer_id"].as_str().expect("guid").len(), 36);
    assert!(created["api_key"].as_str().expect("key").starts_with("fhk_"));
    let (status, shown) = app.admin(Method::GET, "/v1/instances/acme-2", None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["api_key"], Value::Null, "the key is shown once, at creation");

    for (body, path) in [
        (json!({ "name": "Acme" }), "$.name"),
        (json!({ "name": "" }), "$.name"),
        (json!({ "name": "a".repeat(64) }), "$.name"),
        (json!({ "name": "-acme" }), "$.name"),
        (json!({ "name": "acme-" }), "$.name"),
        (json!({ "name": "ok", "mode": "prod" }), "$.mode"),
        (json!({ "name": "ok", "colour": "red" }), "$.colour"),
        (json!({ "name": 5 }), "$.name"),
    ] {
        let (status, problem) = app.admin(Method::POST, "/v1/instances", Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["path"], path, "{body}: {problem}");
    }
    let (status, _) = app.admin(Method::POST, "/v1/instances", Some(json!({ "name": "acme-2" }))).await;
    assert_eq!(status, 409);
    let (_, list) = app.admin(Method::GET, "/v1/instances", None).await;
    assert_eq!(list["data"].as_array().expect("list").len(), 1, "failed creations left nothing");
    assert!(list["next_cursor"].is_null(), "one list shape everywhere, whole here: {list}");
}

#[tokio::test]
async fn endpoints_are_validated_and_secrets_shown_only_when_made() {
    let app = spawn_app().await;
    app.create_instance("acme").await;
    let path = "/v1/instances/acme/endpoints";
    for (body, field) in [
        (json!({ "url": "http://hooks.example.com/" }), "$.url"),
        (json!({ "url": "https://10.0.0.8/hook" }), "$.url"),
        (json!({ "url": "https://169.254.169.254/latest" }), "$.url"),
        (json!({ "url": "not a url" }), "$.url"),
        (json!({ "url": "https://hooks.example.com/", "event_types": ["Payments"] }), "$.event_types[0]"),
        (json!({ "url": "https://hooks.example.com/", "event_types": [] }), "$.event_types"),
        (json!({ "url": "https://hooks.example.com/", "retry": { "max_attempts": 101 } }), "$.retry.max_attempts"),
        (
            json!({ "url": "https://hooks.example.com/", "retry": { "interval_seconds": 0 } }),
            "$.retry.interval_seconds",
        ),
        (json!({ "url": "https://hooks.example.com/", "success": "3xx" }), "$.success"),
    ] {
        let (status, problem) = app.admin(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["path"], field, "{body}: {problem}");
    }
    let (_, list) = app.admin(Method::GET, path, None).await;
    assert_eq!(list, json!({ "data": [], "next_cursor": null }));

    let endpoint = app
        .create_endpoint(
            "acme",
            json!({ "url": "https://hooks.example.com/flinks", "retry": { "backoff": "exponential" } }),
        )
        .await;
    assert!(endpoint["secret"].as_str().expect("secret").starts_with("whsec_"));
    assert_eq!(endpoint["retry"], json!({ "max_attempts": 10, "interval_seconds": 1800, "backoff": "exponential" }));
    assert_eq!(endpoint["success"], "exactly_200");
    let one = format!("{path}/{}", endpoint["id"].as_str().expect("id"));
    let (status, shown) = app.admin(Method::GET, &one, None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["secret"], Value::Null);
    let (status, patched) =
        app.admin(Method::PATCH, &one, Some(json!({ "event_types": ["KYC"], "retry": { "max_attempts": 3 } }))).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["event_types"], json!(["KYC"]));
    assert_eq!(patched["retry"]["max_attempts"], 3);
    assert_eq!(patched["retry"]["backoff"], "exponential", "unchanged fields stay");
    let (status, _) = app.admin(Method::PATCH, &one, Some(json!({ "url": "http://insecure.example.com/" }))).await;
    assert_eq!(status, 422);
    let (status, reset) = app.admin(Method::PATCH, &one, Some(json!({ "event_types": null }))).await;
    assert_eq!(status, 200);
    assert_eq!(reset["event_types"], Value::Null);
    let (status, _) = app.admin(Method::GET, &format!("{path}/ep_01ARZ3NDEKTSV4RRFFQ69G5FAV"), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.admin(Method::DELETE, &one, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.admin(Method::DELETE, &one, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn messages_list_newest_first_with_filters_and_a_cursor() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(500)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.ingest("acme", fixture("kyc.json")).await);
        ids.push(app.ingest("acme", fixture("get_accounts_detail.json")).await);
    }
    ids.push(app.ingest("acme", fixture("investments.json")).await);

    let mut seen = Vec::new();
    let mut query = "?limit=3".to_string();
    for _ in 0..10 {
        let page = app.messages("acme", &query).await;
        seen.extend(page["data"].as_array().expect("data").iter().map(|m| m["id"].as_str().expect("id").to_string()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let kyc = app.messages("acme", "?response_type=KYC").await;
    assert_eq!(kyc["data"].as_array().expect("data").len(), 3);
    let login = app.messages("acme", "?login_id=c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e").await;
    assert_eq!(login["data"].as_array().expect("data").len(), 6);
    assert_eq!(app.messages("acme", "?status=pending").await["data"].as_array().expect("d").len(), 7);
    app.deliver_due().await;
    assert_eq!(app.messages("acme", "?status=delivered").await["data"].as_array().expect("d").len(), 0);
    for bad in ["?status=lost", "?response_type=Kyc", "?limit=0", "?cursor=abc"] {
        let (status, problem) = app.admin(Method::GET, &format!("/v1/instances/acme/messages{bad}"), None).await;
        assert_eq!(status, 422, "{bad}: {problem}");
    }
}

#[tokio::test]
async fn a_login_shows_every_callback_of_the_connection_and_its_delivery_state() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let detail = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    let kyc = app.ingest("acme", fixture("kyc.json")).await;
    app.deliver_due().await;
    let (status, login) =
        app.admin(Method::GET, "/v1/instances/acme/logins/c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e", None).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["tag"], "applicant=APP-20931");
    let callbacks = login["callbacks"].as_array().expect("callbacks");
    let order: Vec<(&str, &str)> =
        callbacks.iter().map(|c| (c["id"].as_str().expect("id"), c["response_type"].as_str().expect("t"))).collect();
    assert_eq!(order, [(detail.as_str(), "GetAccountsDetail"), (kyc.as_str(), "KYC")], "in arrival order");
    assert!(callbacks.iter().all(|c| c["deliveries"][0]["status"] == "delivered"));
    assert_eq!(callbacks[1]["payload"]["Holders"][0]["Address"]["City"], "Sherbrooke");
    let (status, _) = app.admin(Method::GET, "/v1/instances/acme/logins/unknown", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn metrics_count_ingests_attempts_and_what_the_store_holds() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(503)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    app.ingest("acme", fixture("kyc.json")).await;
    app.ingest("acme", fixture("get_accounts_detail.json")).await;
    assert_eq!(app.ingest_raw("acme", b"{".to_vec(), None).await.status().as_u16(), 400);
    app.deliver_due().await;
    // The failed attempt is due again in 30 minutes; 45 minutes later it is 15 minutes overdue.
    app.clock.advance(chrono::Duration::minutes(45));
    // Each attempt entered the ledger with its record.
    let head = app.state.store.ledger_heads().await.expect("heads").pop().expect("acme's head");

    let response = app.http.get(app.url("/metrics")).send().await.expect("metrics");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().expect("ct").starts_with("application/openmetrics-text"));
    let text = response.text().await.expect("text");
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(value("finhook_callbacks_ingested_total{response_type=\"KYC\"}"), 1.0);
    assert_eq!(value("finhook_callbacks_ingested_total{response_type=\"GetAccountsDetail\"}"), 1.0);
    assert_eq!(value("finhook_callbacks_rejected_total{status=\"400\"}"), 1.0);
    assert_eq!(value("finhook_delivery_attempts_total{outcome=\"success\",error_class=\"\"}"), 1.0);
    assert_eq!(value("finhook_delivery_attempts_total{outcome=\"failure\",error_class=\"http\"}"), 1.0);
    assert_eq!(value("finhook_delivery_attempt_duration_seconds_count"), 2.0);
    assert_eq!(value("finhook_messages"), 2.0);
    assert_eq!(value("finhook_deliveries{status=\"pending\"}"), 1.0);
    assert_eq!(value("finhook_deliveries{status=\"delivered\"}"), 1.0);
    assert_eq!(value("finhook_delivery_lag_seconds"), 900.0);
    assert_eq!(value("finhook_ledger_queued"), 0.0);
    assert_eq!(value("finhook_ledger_entries{instance=\"acme\"}"), 2.0);
    assert_eq!(value(&format!("finhook_ledger_head{{instance=\"acme\",hash=\"{}\"}}", head.hash)), 2.0);
    // This node's group commit: the two ingests and the two attempt records at least (a
    // health probe may add one), in batches of one or more, busy for as long as it committed.
    let (batches, writes) = (value("finhook_store_batches_total"), value("finhook_store_batch_writes_total"));
    assert!(writes >= 4.0 && batches >= 1.0 && batches <= writes, "{batches} batches, {writes} writes");
    let (busy, commit) =
        (value("finhook_store_writer_busy_seconds_total"), value("finhook_store_commit_seconds_total"));
    assert!(commit > 0.0 && busy >= commit, "busy {busy} s, committing {commit} s");
    assert!(!text.contains("whsec_") && !text.contains("c91cd0cf"), "no secrets or LoginIds in metrics");
}

/// Runs `finhook bench --json` on this suite's store; returns its report.
async fn bench(args: &[&str]) -> Value {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"));
    command.arg("bench").args(args).args(["--json", "--timeout", "60"]);
    if super::BACKEND == crate::helpers::Backend::Postgres {
        command.args(["--database", &crate::helpers::postgres_database().await]);
    }
    let output = command.output().await.expect("run finhook bench");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("one JSON object on stdout")
}

#[tokio::test]
async fn finhook_bench_reports_what_it_measured() {
    let report = bench(&["--messages", "40", "--concurrency", "4"]).await;
    assert_eq!(report["messages"], 40);
    assert_eq!(report["delivered"], 40, "every ingested callback reached the receiver: {report}");
    assert_eq!(report["payload_bytes"], fixture("get_accounts_detail.json").len());
    let store = if super::BACKEND == crate::helpers::Backend::Postgres { "postgres" } else { "sqlite" };
    assert_eq!(report["database"], store);
    for field in [
        "ingest_per_s",
        "delivered_per_s",
        "peak_rss_mb",
        "cpu_seconds",
        "cpu_seconds_per_1000",
        "bench_cpu_seconds_per_1000",
    ] {
        assert!(report[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {report}");
    }
    assert!(report["machine_busy_share"].as_f64().is_some_and(|v| v > 0.0 && v <= 1.0), "{report}");
    // 40 ingests and 40 attempt records went through the group commit, in batches.
    let group = &report["group_commit"];
    let (batches, mean) = (group["batches"].as_u64().unwrap_or(0), group["mean_batch_writes"].as_f64().unwrap_or(0.0));
    assert!(batches >= 1 && mean >= 1.0 && batches as f64 * mean >= 80.0, "{report}");
    let busy = group["writer_busy_share"].as_f64().expect("busy share");
    assert!(busy > 0.0 && busy <= 1.0 && group["commit_share"].as_f64().is_some_and(|c| c <= busy), "{report}");
    let latency = &report["latency_ms"];
    let (p50, p95, p99) = (
        latency["p50"].as_f64().expect("p50"),
        latency["p95"].as_f64().expect("p95"),
        latency["p99"].as_f64().expect("p99"),
    );
    assert!(p50 <= p95 && p95 <= p99, "{latency}");
    assert!(report.get("drain_per_s").is_none(), "no drain without --backlog: {report}");
}

#[tokio::test]
async fn finhook_bench_spreads_load_over_instances_and_endpoints_with_a_sized_payload() {
    // Instance 0 gets endpoints 0 and 2, instance 1 endpoint 1; callbacks alternate.
    let report = bench(&[
        "--messages",
        "40",
        "--concurrency",
        "4",
        "--instances",
        "2",
        "--endpoints",
        "3",
        "--payload-bytes",
        "9000",
    ])
    .await;
    assert_eq!(
        (report["expected_deliveries"].as_u64(), report["delivered"].as_u64()),
        (Some(60), Some(60)),
        "{report}"
    );
    let bytes = report["payload_bytes"].as_u64().expect("payload_bytes");
    assert!((9000..9400).contains(&bytes), "{report}");
}

#[tokio::test]
async fn finhook_bench_times_the_drain_of_a_backlog_offered_at_a_fixed_rate() {
    // The receiver answers 503 while the 20 callbacks are ingested at 400/s, then recovers;
    // the retries (1 s apart) drain the backlog.
    let report = bench(&["--backlog", "20", "--retry-seconds", "1", "--rate", "400"]).await;
    assert_eq!((report["load"].as_str(), report["offered_per_s"].as_f64()), (Some("open"), Some(400.0)), "{report}");
    assert_eq!(report["delivered"], 20, "{report}");
    assert!(report["refused_attempts"].as_u64().is_some_and(|n| n >= 20), "every first attempt was refused: {report}");
    assert!(report["drain_per_s"].as_f64().is_some_and(|v| v > 0.0), "{report}");
}

#[tokio::test]
async fn finhook_bench_seeds_a_backlog_into_the_stopped_store_and_a_restarted_server_drains_it() {
    // 30 callbacks over two instances with three endpoints: 45 deliveries written while the
    // server is down; only the restarted server can have delivered them.
    let report = bench(&["--backlog", "30", "--seed", "--instances", "2", "--endpoints", "3"]).await;
    assert_eq!(report["seeded"], true, "{report}");
    assert_eq!(
        (report["expected_deliveries"].as_u64(), report["delivered"].as_u64()),
        (Some(45), Some(45)),
        "{report}"
    );
    assert!(report["drain_per_s"].as_f64().is_some_and(|v| v > 0.0), "{report}");
    assert!(report["peak_rss_mb"].as_f64().is_some_and(|v| v > 0.0), "the restarted server was measured: {report}");
    assert!(report.get("latency_ms").is_none(), "no 202s, so no latency: {report}");
}

#[tokio::test]
async fn finhook_bench_spreads_logins_and_checks_an_ordered_endpoints_sequence() {
    // 60 callbacks over 5 LoginIds to an endpoint that takes each LoginId's callbacks one at
    // a time: all arrive, each after the one numbered before it.
    let report = bench(&["--messages", "60", "--concurrency", "8", "--logins", "5", "--ordering", "login-id"]).await;
    assert_eq!((report["logins"].as_u64(), report["ordering"].as_str()), (Some(5), Some("login_id")), "{report}");
    assert_eq!(report["delivered"], 60, "{report}");
    assert_eq!(report["out_of_order"], 0, "an ordered endpoint got a LoginId's callbacks out of sequence: {report}");
    let plain = bench(&["--messages", "10", "--concurrency", "2"]).await;
    assert!(plain.get("out_of_order").is_none(), "one LoginId: nothing to order: {plain}");
}

#[tokio::test]
async fn finhook_bench_measures_the_floor_with_a_relay_in_place_of_the_server() {
    // The relay's durable write goes to a file, or with --database to PostgreSQL.
    let (floor, name) = match super::BACKEND {
        crate::helpers::Backend::Postgres => ("postgres-relay", "PostgreSQL relay floor"),
        crate::helpers::Backend::Sqlite => ("durable-relay", "durable relay floor"),
    };
    // Two instances with three endpoints between them, dealt as for finhook itself.
    let report =
        bench(&["--floor", floor, "--messages", "40", "--concurrency", "4", "--instances", "2", "--endpoints", "3"])
            .await;
    assert_eq!(report["server"], name, "{report}");
    assert_eq!(
        (report["expected_deliveries"].as_u64(), report["delivered"].as_u64()),
        (Some(60), Some(60)),
        "every callback went through the relay to each endpoint of its instance: {report}"
    );
    assert!(report["cpu_seconds_per_1000"].as_f64().is_some(), "{report}");
    assert!(report.get("group_commit").is_none(), "a relay has no group commit to report: {report}");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/openapi.json")).send().await.expect("openapi");
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let expected = [
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/v1/instances", "post"),
        ("/v1/instances", "get"),
        ("/v1/instances/{name}", "get"),
        ("/v1/instances/{name}", "patch"),
        ("/v1/instances/{name}/rotate-key", "post"),
        ("/v1/instances/{name}/endpoints", "post"),
        ("/v1/instances/{name}/endpoints", "get"),
        ("/v1/instances/{name}/endpoints/{id}", "get"),
        ("/v1/instances/{name}/endpoints/{id}", "patch"),
        ("/v1/instances/{name}/endpoints/{id}", "delete"),
        ("/v1/instances/{name}/endpoints/{id}/rotate-secret", "post"),
        ("/v1/instances/{name}/endpoints/{id}/test", "post"),
        ("/v1/instances/{name}/endpoints/{id}/probe", "post"),
        ("/v1/instances/{name}/endpoints/{id}/deliveries", "get"),
        ("/v1/instances/{name}/.well-known/jwks.json", "get"),
        ("/v1/instances/{name}/rotate-signing-key", "post"),
        ("/v1/instances/{name}/ledger", "get"),
        ("/v1/instances/{name}/callbacks", "post"),
        ("/v1/instances/{name}/messages", "get"),
        ("/v1/instances/{name}/messages/{msg}", "get"),
        ("/v1/instances/{name}/messages/{msg}/redeliver", "post"),
        ("/v1/instances/{name}/logins/{login_id}", "get"),
        ("/v1/instances/{name}/feed", "get"),
        ("/v1/instances/{name}/feed/ack", "post"),
        ("/v1/instances/{name}/portal-link", "post"),
        ("/v1/instances/{name}/portal-links", "get"),
        ("/v1/instances/{name}/portal-links/{id}", "delete"),
        ("/v1/instances/{name}/recover", "post"),
        ("/v1/instances/{name}/recover/{id}", "get"),
        ("/v1/instances/{name}/sandbox/trigger", "post"),
        ("/v3/{customer_id}/BankingServices/GenerateAuthorizeToken", "post"),
        ("/v3/{customer_id}/BankingServices/Authorize", "post"),
        ("/v3/{customer_id}/BankingServices/GetAccountsDetail", "post"),
        ("/v3/{customer_id}/BankingServices/GetAccountsDetailAsync/{request_id}", "get"),
        ("/v3/{customer_id}/BankingServices/GetAccountsDetailAsync/{request_id}", "post"),
        ("/v3/{customer_id}/BankingServices/GetAccountsSummary", "post"),
        ("/sandbox/{customer_id}/connect", "get"),
        ("/v1/admin-key/rotate", "post"),
        ("/v1/audit", "get"),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    let documented: usize = paths.values().map(|p| p.as_object().map_or(0, |ops| ops.len())).sum();
    assert_eq!(documented, expected.len(), "no undocumented extras: {:?}", paths.keys().collect::<Vec<_>>());
    for (path, method) in expected {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is missing");
    }
    // Client generators need an operation id per operation, each unique, and a summary.
    let mut ids = std::collections::HashSet::new();
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_string()), "{method} {path}: operationId {id} is used twice");
            assert!(operation["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path}: no summary");
        }
    }
    // Public keys are public, and the Flinks-compatible sandbox takes Flinks' own headers:
    // these are the operations without the bearer key, and the only ones.
    let unbearered: Vec<&str> = paths
        .iter()
        .flat_map(|(path, operations)| {
            operations.as_object().into_iter().flatten().filter_map(move |(_, operation)| {
                (operation["security"] == serde_json::json!([{}])).then_some(path.as_str())
            })
        })
        .collect();
    assert!(unbearered.contains(&"/v1/instances/{name}/.well-known/jwks.json"), "{unbearered:?}");
    assert!(
        unbearered.iter().all(|p| p.ends_with("jwks.json") || p.starts_with("/v3/") || p.starts_with("/sandbox/")),
        "{unbearered:?}"
    );
    assert_eq!(unbearered.len(), 1 + 7, "{unbearered:?}");
    let authorize = &doc["paths"]["/v3/{customer_id}/BankingServices/Authorize"]["post"];
    assert!(authorize["responses"]["203"].is_object(), "the MFA challenge is documented: {authorize}");
    // Every schema reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').expect("end")];
        assert!(doc["components"]["schemas"][name].is_object(), "dangling $ref {name}");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["CreateEndpoint"]["properties"]["url"].is_object());
}

#[tokio::test]
async fn an_instance_key_can_be_rotated_and_the_old_one_stops_working() {
    let app = spawn_app().await;
    let old = app.create_instance("acme").await;
    let (status, rotated) = app.call(Method::POST, "/v1/instances/acme/rotate-key", &old, None).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["api_key"].as_str().expect("new key").to_string();
    assert_ne!(new, old);
    let (status, _) = app.call(Method::GET, "/v1/instances/acme", &old, None).await;
    assert_eq!(status, 401);
    let (status, shown) = app.call(Method::GET, "/v1/instances/acme", &new, None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["api_key"], Value::Null);
}

#[tokio::test]
async fn finished_messages_leave_after_the_retention_period_and_pending_ones_stay() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(200)], Reply::Status(500)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let delivered = app.ingest("acme", fixture("kyc.json")).await;
    app.deliver_due().await;
    let pending = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    app.deliver_due().await;
    let (store, clock) = (app.state.store.clone(), app.clock.clone());

    assert_eq!(
        finhook_server::retention::sweep(store.as_ref(), &clock, 30).await.expect("sweep"),
        0,
        "nothing is old yet"
    );
    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(
        finhook_server::retention::sweep(store.as_ref(), &clock, 0).await.expect("sweep"),
        0,
        "0 keeps everything"
    );
    assert_eq!(finhook_server::retention::sweep(store.as_ref(), &clock, 30).await.expect("sweep"), 1);
    let (status, _) = app.admin(Method::GET, &format!("/v1/instances/acme/messages/{delivered}"), None).await;
    assert_eq!(status, 404, "the delivered message and its personal data are gone");
    assert_eq!(
        app.message("acme", &pending).await["deliveries"][0]["status"],
        "pending",
        "a pending delivery keeps its message"
    );
}

#[tokio::test]
async fn a_sweep_deletes_everything_past_retention_in_bounded_batches() {
    use finhook_server::clock::Clock;
    let app = spawn_app().await;
    app.create_instance("acme").await;
    // More than two of the sweep's 500-message transactions; no endpoint, so each message
    // is finished as soon as it is stored.
    app.store_bare_messages("acme", 1_100).await;
    let kept = app.ingest("acme", fixture("kyc.json")).await;
    app.clock.advance(chrono::Duration::days(31));
    let recent = app.ingest("acme", fixture("kyc.json")).await;

    let kyc = fixture("kyc.json").len() as u64;
    let stored_bytes = || async { app.admin(Method::GET, "/v1/instances/acme", None).await.1["stored_bytes"].clone() };
    assert_eq!(stored_bytes().await, json!(1_100 * 2 + 2 * kyc), "every payload counted, in sets and one by one");
    let clock = app.clock.clone();
    let purged = finhook_server::retention::sweep(app.state.store.as_ref(), &clock, 30).await.expect("sweep");
    assert_eq!(purged, 1_101, "all that was old, across three transactions");
    assert_eq!(stored_bytes().await, json!(kyc), "what the sweep deleted is no longer counted");
    let stats = app.state.store.stats(app.clock.now()).await.expect("stats");
    assert_eq!(stats.messages, 1, "only the message inside the period stays");
    let (status, _) = app.admin(Method::GET, &format!("/v1/instances/acme/messages/{kept}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.admin(Method::GET, &format!("/v1/instances/acme/messages/{recent}"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn endpoint_secrets_are_sealed_at_rest_with_a_key_kept_apart() {
    use sqlx::Connection;
    let app = spawn_app().await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": "https://hooks.example.com/flinks" })).await;
    let secret = endpoint["secret"].as_str().expect("secret").to_string();
    let query = "SELECT secret FROM endpoint_secrets";
    let stored: Vec<String> = match BACKEND {
        Backend::Sqlite => {
            let url = format!("{}?mode=ro", app.database_url());
            let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("open db");
            sqlx::query_scalar(query).fetch_all(&mut connection).await.expect("read")
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&app.database_url()).await.expect("connect");
            sqlx::query_scalar(query).fetch_all(&mut connection).await.expect("read")
        }
    };
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("enc1:"), "{}", stored[0]);
    assert!(!stored[0].contains(&secret[6..]), "the database alone does not hold the secret");
    if BACKEND == Backend::Sqlite {
        // The embedded store keeps its key beside the database, readable by its owner only;
        // the shared store takes it from FINHOOK_SECRETS_KEY and keeps none on disk.
        let key_file = app.dir.path().join("finhook.db.key");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).expect("key file").permissions().mode() & 0o777, 0o600);
    }
}

/// Messages are found by Tag, RequestId, type and the time they came, each filter on its
/// own and together; a bad time is a 422 naming the parameter.
#[tokio::test]
async fn messages_are_found_by_tag_request_id_type_and_time() {
    let app = spawn_app().await;
    app.create_instance("acme").await;
    let kyc = app.ingest("acme", fixture("kyc.json")).await;
    let accounts = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    app.clock.advance(chrono::Duration::hours(1));
    let mut other: Value = serde_json::from_slice(&fixture("investments.json")).expect("json");
    other["Tag"] = serde_json::json!("applicant=APP-777");
    let investments = app.ingest("acme", serde_json::to_vec(&other).expect("bytes")).await;
    let found = |query: &'static str| {
        let app = &app;
        async move {
            let page = app.messages("acme", query).await;
            let ids: Vec<String> = page["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_string())
                .collect();
            ids
        }
    };
    assert_eq!(found("?tag=applicant%3DAPP-20931").await, [accounts.clone(), kyc.clone()]);
    assert_eq!(found("?tag=applicant%3DAPP-777").await, std::slice::from_ref(&investments));
    assert_eq!(
        found("?request_id=56cd11e7-1deb-4307-af37-ab9622058021&response_type=KYC").await,
        std::slice::from_ref(&kyc)
    );
    assert_eq!(found("?since=2026-03-14T18:30:00Z").await, std::slice::from_ref(&investments));
    assert_eq!(found("?until=2026-03-14T18:30:00Z").await, [accounts.clone(), kyc.clone()]);
    assert!(found("?tag=applicant%3DAPP-777&until=2026-03-14T18:30:00Z").await.is_empty(), "filters combine");
    let (status, problem) = app.admin(Method::GET, "/v1/instances/acme/messages?since=an-hour-ago", None).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["path"], "since");
}
