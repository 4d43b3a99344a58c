//! Endpoint health: success rate and latency over the last hour and day, the last outcome,
//! the run of failures and the backlog, in the API and in `/metrics` with the instance's
//! and endpoint's labels.

use chrono::Duration;
use reqwest::Method;
use serde_json::{json, Value};

use super::spawn_app_with;
use crate::helpers::*;

async fn health(app: &TestApp, id: &str) -> Value {
    let (status, endpoint) = app.admin(Method::GET, &format!("/v1/instances/acme/endpoints/{id}"), None).await;
    assert_eq!(status, 200, "{endpoint}");
    endpoint["health"].clone()
}

async fn series(app: &TestApp, name: &str) -> f64 {
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[tokio::test]
async fn an_endpoints_health_says_how_its_attempts_went_and_what_waits() {
    // One attempt at a time, so the receiver's answers come in a known order.
    let app = spawn_app_with(Options { per_endpoint: 1, ..Options::default() }).await;
    let receiver = TestReceiver::start(&[Reply::Status(500), Reply::Status(503)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let id = endpoint["id"].as_str().expect("id").to_string();
    assert_eq!(
        endpoint["health"]["last_hour"],
        json!({ "attempts": 0, "succeeded": 0, "success_rate": null, "latency_p50_ms": null, "latency_p99_ms": null })
    );

    for _ in 0..4 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    assert_eq!(app.deliver_due().await, 4);
    let before_flush = health(&app, &id).await;
    assert_eq!(before_flush["last_hour"]["attempts"], 0, "counted in memory until the flush");
    assert_eq!(before_flush["backlog"], 2, "the backlog is read from the store at once");
    assert_eq!(app.state.health.flush(app.state.store.as_ref()).await.expect("flush"), 1);

    let now = health(&app, &id).await;
    for window in ["last_hour", "last_day"] {
        let w = &now[window];
        assert_eq!(
            (w["attempts"].as_u64(), w["succeeded"].as_u64(), w["success_rate"].as_f64()),
            (Some(4), Some(2), Some(0.5)),
            "{now}"
        );
        let (p50, p99) = (w["latency_p50_ms"].as_u64().expect("p50"), w["latency_p99_ms"].as_u64().expect("p99"));
        assert!(p50 <= p99 && p99 <= 10_000, "{now}");
    }
    assert_eq!((now["last_status_code"].as_u64(), now["last_error_class"].clone()), (Some(200), Value::Null));
    assert_eq!(now["last_attempt_at"], "2026-03-14T18:00:00Z");
    assert_eq!((now["consecutive_failures"].as_u64(), now["failing_since"].clone()), (Some(0), Value::Null));
    assert_eq!((now["backlog"].as_u64(), now["oldest_due_at"].clone()), (Some(2), Value::Null), "due in 30 minutes");

    let labels = format!("instance=\"acme\",endpoint=\"{id}\"");
    assert_eq!(series(&app, &format!("finhook_endpoint_attempts_total{{{labels},outcome=\"failure\"}}")).await, 2.0);
    assert_eq!(series(&app, &format!("finhook_endpoint_attempts_total{{{labels},outcome=\"success\"}}")).await, 2.0);
    assert_eq!(series(&app, &format!("finhook_endpoint_attempt_duration_seconds_count{{{labels}}}")).await, 4.0);
    assert_eq!(series(&app, &format!("finhook_endpoint_backlog{{{labels}}}")).await, 2.0);
    assert_eq!(series(&app, &format!("finhook_endpoint_oldest_due_seconds{{{labels}}}")).await, 0.0);

    // An hour and a half later the two retries are overdue and the hour's window is empty.
    app.clock.advance(Duration::minutes(90));
    let later = health(&app, &id).await;
    assert_eq!((later["last_hour"]["attempts"].as_u64(), later["last_day"]["attempts"].as_u64()), (Some(0), Some(4)));
    assert_eq!(later["oldest_due_at"], "2026-03-14T18:30:00Z");
    assert_eq!(series(&app, &format!("finhook_endpoint_oldest_due_seconds{{{labels}}}")).await, 3600.0);
    // The listing carries the same.
    let (_, list) = app.admin(Method::GET, "/v1/instances/acme/endpoints", None).await;
    assert_eq!(list["data"][0]["health"], later);
    // Past a day nothing is left of them.
    app.clock.advance(Duration::hours(24));
    assert_eq!(health(&app, &id).await["last_day"]["attempts"], 0);
}

/// The example rules (`docs/alerts/finhook.rules.yml`) name only metric families the server
/// registers (empty families print nothing, so the registrations are read, and the ones
/// every server prints are checked in a scrape too).
#[tokio::test]
async fn the_example_alert_rules_name_only_metrics_finhook_exports() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let rules = std::fs::read_to_string(format!("{root}/docs/alerts/finhook.rules.yml")).expect("the rules file");
    let source = std::fs::read_to_string(format!("{root}/crates/finhook-server/src/metrics.rs")).expect("metrics.rs");
    let mut named = std::collections::BTreeSet::new();
    for (start, _) in rules.match_indices("finhook_") {
        let name: String =
            rules[start..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        let family = ["_total", "_bucket", "_count", "_sum"].iter().find_map(|suffix| name.strip_suffix(suffix));
        named.insert(family.unwrap_or(&name).to_string());
    }
    assert!(named.len() >= 8, "{named:?}");
    let unregistered: Vec<&String> = named
        .iter()
        .filter(|name| {
            let registered = format!("register(\n            \"{}\"", &name["finhook_".len()..]);
            let inline = format!("register(\"{}\"", &name["finhook_".len()..]);
            !source.contains(&registered) && !source.contains(&inline)
        })
        .collect();
    assert!(unregistered.is_empty(), "the rules name metrics finhook does not register: {unregistered:?}");
    let app = spawn_app_with(Options::default()).await;
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    for always in ["finhook_delivery_lag_seconds", "finhook_events_queued", "finhook_ledger_queued"] {
        assert!(named.contains(always) && metrics.contains(&format!("# TYPE {always} gauge")), "{always}");
    }
}
