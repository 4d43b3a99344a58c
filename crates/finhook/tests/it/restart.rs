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
