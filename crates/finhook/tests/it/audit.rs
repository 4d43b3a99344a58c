//! The audit log: every operator and API action is recorded with who, what, to what, when,
//! from where and the request's id; the admin reads every instance's, an instance key its
//! own.

use reqwest::Method;
use serde_json::{json, Value};

use super::spawn_app;
use crate::helpers::*;

async fn audit(app: &TestApp, key: &str, query: &str) -> (u16, Value) {
    let (status, page) = app.call(Method::GET, &format!("/v1/audit{query}"), key, None).await;
    (status.as_u16(), page)
}

fn actions(page: &Value) -> Vec<(String, String, String)> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| {
            let text = |field: &str| e[field].as_str().unwrap_or("-").to_string();
            (text("actor"), text("action"), text("instance"))
        })
        .collect()
}

#[tokio::test]
async fn every_action_is_recorded_with_who_what_when_and_from_where() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let acme_key = app.create_instance("acme").await;
    app.create_instance("other").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let id = endpoint["id"].as_str().expect("id").to_string();
    let path = format!("/v1/instances/acme/endpoints/{id}");
    app.call(Method::PATCH, &path, &acme_key, Some(json!({ "description": "main" }))).await;
    app.admin(Method::POST, &format!("{path}/rotate-secret"), None).await;
    let message = app.ingest("acme", fixture("kyc.json")).await;
    app.admin(Method::POST, &format!("/v1/instances/acme/messages/{message}/redeliver"), None).await;
    let rotated = app
        .http
        .post(app.url("/v1/instances/other/rotate-key"))
        .bearer_auth(ADMIN_KEY)
        .header("x-request-id", "ops-ticket-42")
        .send()
        .await
        .expect("rotate");
    assert_eq!(rotated.status().as_u16(), 200);
    app.admin(Method::DELETE, &path, None).await;

    let (status, page) = audit(&app, ADMIN_KEY, "").await;
    assert_eq!(status, 200, "{page}");
    let who = |actor: &str, action: &str, instance: &str| (actor.to_string(), action.to_string(), instance.to_string());
    assert_eq!(
        actions(&page),
        [
            who("admin", "endpoint.delete", "acme"),
            who("admin", "instance.rotate_key", "other"),
            who("admin", "message.redeliver", "acme"),
            who("admin", "endpoint.rotate_secret", "acme"),
            who("instance:acme", "endpoint.update", "acme"),
            who("admin", "endpoint.create", "acme"),
            who("admin", "instance.create", "other"),
            who("admin", "instance.create", "acme"),
        ],
        "newest first; ingest is not an operator action"
    );
    let entries = page["data"].as_array().expect("data");
    assert_eq!(entries[0]["target"], id.as_str());
    assert_eq!(entries[2]["target"], message.as_str());
    assert_eq!(
        (entries[1]["request_id"].as_str(), entries[1]["remote_addr"].as_str()),
        (Some("ops-ticket-42"), Some("127.0.0.1"))
    );
    assert!(
        entries.iter().all(|e| e["request_id"].as_str().is_some_and(|r| !r.is_empty())),
        "every entry has its request"
    );
    let at: chrono::DateTime<chrono::Utc> = serde_json::from_value(entries[0]["at"].clone()).expect("a time");
    assert_eq!(at, t0());

    // An instance key reads its own instance's entries, never another's.
    let (_, own) = audit(&app, &acme_key, "").await;
    assert!(actions(&own).iter().all(|(_, _, instance)| instance == "acme"), "{own}");
    assert_eq!(actions(&own).len(), 6);
    let (status, _) = audit(&app, &acme_key, "?instance=other").await;
    assert_eq!(status, 404);
    let (_, other) = audit(&app, ADMIN_KEY, "?instance=other").await;
    assert_eq!(actions(&other).len(), 2);
    // Pages go further back.
    let (_, first) = audit(&app, ADMIN_KEY, "?limit=3").await;
    let cursor = first["next_cursor"].as_i64().expect("a next page");
    let (_, second) = audit(&app, ADMIN_KEY, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(actions(&second)[0], who("admin", "endpoint.rotate_secret", "acme"));
    let (status, _) = audit(&app, ADMIN_KEY, "?limit=0").await;
    assert_eq!(status, 422);
}
