//! Self-service portal links: made through the API (expiry, access), opened without any
//! key into a dashboard session scoped to the instance, read-only when the link says so,
//! and ended by revocation or expiry on the session's next request.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::spawn_app;
use crate::helpers::*;

/// A page of the dashboard with the session cookie `cookie` (no redirects followed).
async fn page(app: &TestApp, method: Method, path: &str, cookie: &str) -> (StatusCode, String) {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let response = client.request(method, app.url(path)).header("cookie", cookie).send().await.expect("request");
    let status = response.status();
    (status, response.text().await.expect("text"))
}

/// Opens a portal link: the page, and the session cookie it set.
async fn open(app: &TestApp, path: &str) -> (StatusCode, String, Option<String>) {
    let response = reqwest::Client::new().get(app.url(path)).send().await.expect("open");
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string);
    (status, response.text().await.expect("text"), cookie)
}

#[tokio::test]
async fn a_portal_link_opens_the_instance_alone_until_it_is_revoked_or_expires() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let key = app.create_instance("acme").await;
    let other_key = app.create_instance("other").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": receiver.url("/hook") })).await;
    let endpoint = endpoint["id"].as_str().expect("id").to_string();
    let create = |body: Value| app.call(Method::POST, "/v1/instances/acme/portal-link", &key, Some(body));

    // Made with the instance's own key; shown once; an hour by default.
    let (status, link) = create(json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    let path = link["path"].as_str().expect("path").to_string();
    assert!(path.starts_with("/portal/fhp_") && link["url"].as_str().expect("url").ends_with(&path), "{link}");
    assert_eq!((&link["read_only"], &link["live"]), (&json!(false), &json!(true)));
    assert_eq!(link["expires_at"], json!("2026-03-14T19:00:00Z"), "t0 + 3,600 s");
    for (body, path) in [
        (json!({ "expires_in_seconds": 59 }), "$.expires_in_seconds"),
        (json!({ "expires_in_seconds": 604_801 }), "$.expires_in_seconds"),
    ] {
        let (status, problem) = create(body.clone()).await;
        assert_eq!((status, &problem["errors"][0]["path"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!(path)), "{body}");
    }
    let (status, _) = app.call(Method::POST, "/v1/instances/acme/portal-link", &other_key, Some(json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another instance's key");
    let (_, listed) = app.call(Method::GET, "/v1/instances/acme/portal-links", &key, None).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    assert!(listed.to_string().find("fhp_").is_none(), "the token is never shown again: {listed}");

    // Opened without a key: a session on acme alone.
    let (status, _, _) = open(&app, "/portal/fhp_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, landing, cookie) = open(&app, &path).await;
    assert_eq!(status, StatusCode::OK, "{landing}");
    assert!(landing.contains("/dashboard/instances/acme"), "{landing}");
    let cookie = cookie.expect("a session cookie");
    let (status, acme) = page(&app, Method::GET, "/dashboard/instances/acme", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(acme.contains("You are using a portal link.") && !acme.contains("portal-link-list"), "no links to manage");
    let (status, _) = page(&app, Method::GET, "/dashboard/instances/other", &cookie).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "scoped to its instance");
    // Read-write: it may send a test callback; it may not make links.
    let test = format!("/dashboard/instances/acme/endpoints/{endpoint}/test");
    let (status, _) = page(&app, Method::POST, &test, &cookie).await;
    assert!(status.is_success() || status.is_redirection(), "{status}");
    assert_eq!(app.deliver_due().await, 1);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let made = client
        .post(app.url("/dashboard/instances/acme/portal-links"))
        .header("cookie", &cookie)
        .form(&[("hours", "168")])
        .send()
        .await
        .expect("post");
    assert_eq!(made.status(), StatusCode::FORBIDDEN, "a portal session cannot mint links");

    // Revoked: the next request of its session ends it, and the link opens nothing.
    let id = link["id"].as_str().expect("id");
    let (status, revoked) =
        app.call(Method::DELETE, &format!("/v1/instances/acme/portal-links/{id}"), &key, None).await;
    assert_eq!((status, &revoked["live"]), (StatusCode::OK, &json!(false)), "{revoked}");
    let (status, ended) = page(&app, Method::GET, "/dashboard/instances/acme", &cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(ended.contains("expired or was revoked"), "{ended}");
    let (status, _, _) = open(&app, &path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.call(Method::DELETE, "/v1/instances/acme/portal-links/ptl_nope", &key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Read-only: it shows, it changes nothing; and it ends when it expires.
    let (_, link) = create(json!({ "read_only": true, "expires_in_seconds": 60 })).await;
    let (_, _, cookie) = open(&app, link["path"].as_str().expect("path")).await;
    let cookie = cookie.expect("cookie");
    let (status, acme) = page(&app, Method::GET, "/dashboard/instances/acme", &cookie).await;
    assert!(status == StatusCode::OK && acme.contains("read-only portal link"), "{acme}");
    let (status, refused) = page(&app, Method::POST, &test, &cookie).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(refused.contains("read-only"), "{refused}");
    assert_eq!(app.deliver_due().await, 0, "nothing was sent");
    app.clock.advance(chrono::Duration::seconds(61));
    let (status, _) = page(&app, Method::GET, "/dashboard/instances/acme", &cookie).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired");

    let (_, audit) = app.admin(Method::GET, "/v1/audit?instance=acme", None).await;
    let actions: Vec<&str> =
        audit["data"].as_array().expect("data").iter().filter_map(|e| e["action"].as_str()).collect();
    for action in ["portal_link.create", "portal_link.open", "portal_link.revoke", "endpoint.test"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(audit.to_string().contains("(portal ptl_"), "a portal session's actions name its link: {audit}");
}
