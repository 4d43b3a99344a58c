//! Durability: the schedule lives in the store, so a restart resumes every pending
//! delivery, and an attempt in flight when the process is killed is made again.

use serde_json::json;

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
    let (dir, clock) = (first.dir.clone(), first.clock.clone());
    first.stop().await;

    let second = spawn_app_with(Options { dir: Some(dir), clock: Some(clock.clone()), ..Options::default() }).await;
    assert_eq!(second.deliver_due().await, 1, "the untried callback goes at once after the restart");
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(second.deliver_due().await, 1, "the failed one is retried 30 minutes after its attempt");
    for id in ids.iter().chain([&untried]) {
        assert_eq!(second.message("acme", id).await["deliveries"][0]["status"], "delivered", "{id}");
    }
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test]
async fn an_attempt_in_flight_when_the_process_is_killed_is_made_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = TestReceiver::start(&[Reply::Hang], Reply::Status(200)).await;
    let server = FinhookProcess::serve(dir.path()).await;
    let api = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let created = api
        .post(format!("{base}/v1/instances"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "name": "acme" }))
        .send()
        .await
        .expect("create instance");
    assert_eq!(created.status().as_u16(), 201);
    let endpoint = api
        .post(format!("{base}/v1/instances/acme/endpoints"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "url": receiver.url("/hook") }))
        .send()
        .await
        .expect("create endpoint");
    assert_eq!(endpoint.status().as_u16(), 201);
    let accepted: serde_json::Value = api
        .post(format!("{base}/v1/instances/acme/callbacks"))
        .bearer_auth(ADMIN_KEY)
        .body(fixture("kyc.json"))
        .send()
        .await
        .expect("ingest")
        .json()
        .await
        .expect("json");
    let message_id = accepted["message_id"].as_str().expect("id").to_string();

    // The receiver holds the first attempt open; kill -9 the server in the middle of it.
    receiver.wait_for(1).await;
    server.kill().await;

    let server = FinhookProcess::serve(dir.path()).await;
    let received = receiver.wait_for(2).await;
    assert_eq!(received[1].header("webhook-id"), Some(message_id.as_str()), "the same message, again");
    assert_eq!(received[1].body, received[0].body);
    let base = format!("http://{}", server.addr);
    let mut status = String::new();
    for _ in 0..200 {
        let message: serde_json::Value = api
            .get(format!("{base}/v1/instances/acme/messages/{message_id}"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("show")
            .json()
            .await
            .expect("json");
        status = message["deliveries"][0]["status"].as_str().unwrap_or_default().to_string();
        if status == "delivered" {
            let attempts = message["deliveries"][0]["attempts"].as_array().expect("attempts").clone();
            assert_eq!(attempts.len(), 1, "the interrupted attempt left no record and was made again");
            assert_eq!(attempts[0]["attempt_number"], 1);
            break;
        }
        // Polls the API for the recorded outcome, which follows the 200 within milliseconds.
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(status, "delivered");
    server.kill().await;
}
