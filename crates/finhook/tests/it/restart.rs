//! Durability: the schedule lives in the store, so a restart resumes every pending
//! delivery on schedule. (Killing a real process is in `kill.rs`.)

use serde_json::json;

use super::{spawn_app, spawn_app_with};
use crate::helpers::*;

#[tokio::test]
async fn a_restart_resumes_pending_deliveries_on_schedule() {
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    let first = spawn_app().await;
    first.create_instance("acme").await;
    first.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let ids = [
        first.ingest("acme", fixture("kyc.json")).await,
        first.ingest("acme", fixture("get_accounts_detail.json")).await,
    ];
    // One attempt fails (500), one succeeds; then one callback is accepted but never tried.
    assert_eq!(first.deliver_due().await, 2);
    let untried = first.ingest("acme", fixture("investments.json")).await;
    let (options, clock) = (first.restart_options(), first.clock.clone());
    first.stop().await;

    let second = spawn_app_with(options).await;
    assert_eq!(second.pending_at_start, 2, "the failed callback and the untried one are pending at start");
    assert_eq!(second.deliver_due().await, 1, "the untried callback goes at once after the restart");
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(second.deliver_due().await, 1, "the failed one is retried 30 minutes after its attempt");
    for id in ids.iter().chain([&untried]) {
        assert_eq!(second.message("acme", id).await["deliveries"][0]["status"], "delivered", "{id}");
    }
    assert_eq!(receiver.received().len(), 4);
}

/// The admin key given at a start (`FINHOOK_ADMIN_KEY`) is kept, as a hash, for starts
/// without it; one the server keeps itself can be rotated, once, and the old one stops.
#[tokio::test]
async fn the_admin_key_survives_a_restart_without_it_and_can_then_be_rotated() {
    let app = spawn_app().await;
    let (status, problem) = app.admin(reqwest::Method::POST, "/v1/admin-key/rotate", None).await;
    assert_eq!(status, 409, "given by the settings: rotated there");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("FINHOOK_ADMIN_KEY")), "{problem}");
    let acme_key = app.create_instance("acme").await;
    let (status, _) = app.call(reqwest::Method::POST, "/v1/admin-key/rotate", &acme_key, None).await;
    assert_eq!(status, 403, "an instance key may not");
    let options = Options { no_admin_key: true, ..app.restart_options() };
    app.stop().await;

    let app = spawn_app_with(options.clone()).await;
    let (status, _) = app.admin(reqwest::Method::GET, "/v1/instances", None).await;
    assert_eq!(status, 200, "the key given at the first start still works");
    let (status, rotated) = app.admin(reqwest::Method::POST, "/v1/admin-key/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["admin_key"].as_str().expect("the new key").to_string();
    assert_ne!(new_key, ADMIN_KEY);
    let (status, _) = app.admin(reqwest::Method::GET, "/v1/instances", None).await;
    assert_eq!(status, 401, "the old key stops at once");
    let (status, _) = app.call(reqwest::Method::GET, "/v1/instances", &new_key, None).await;
    assert_eq!(status, 200);
    app.stop().await;

    let app = spawn_app_with(options).await;
    let (status, _) = app.call(reqwest::Method::GET, "/v1/instances", &new_key, None).await;
    assert_eq!(status, 200, "the rotated key survives a restart");
    let (status, _) = app.admin(reqwest::Method::GET, "/v1/instances", None).await;
    assert_eq!(status, 401);
}
