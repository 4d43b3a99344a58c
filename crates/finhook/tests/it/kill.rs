//! A real `finhook serve` process on the embedded store, killed with SIGKILL: an attempt in
//! flight is made again, and sandbox callbacks owed at the kill are sent after the restart.
//! (The shared store's crash takeover is in `postgres.rs`.)

use serde_json::{json, Value};

use crate::helpers::*;

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
#[tokio::test]
async fn callbacks_owed_when_the_server_is_killed_are_sent_after_the_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let server = FinhookProcess::serve(dir.path()).await;
    let api = reqwest::Client::new();
    let created: Value = api
        .post(server.url("/v1/instances"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "name": "bank", "mode": "sandbox" }))
        .send()
        .await
        .expect("instance")
        .json()
        .await
        .expect("json");
    // Ten minutes of simulated aggregation: the server dies long before the callbacks are due.
    let patched = api
        .patch(server.url("/v1/instances/bank"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "sandbox": { "aggregation_delay_ms": 600_000 } }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status().as_u16(), 200);
    let endpoint = api
        .post(server.url("/v1/instances/bank/endpoints"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "url": receiver.url("/flinks") }))
        .send()
        .await
        .expect("endpoint");
    assert_eq!(endpoint.status().as_u16(), 201);
    let customer_id = created["customer_id"].as_str().expect("customer id");
    let authorized: Value = api
        .post(server.url(&format!("/v3/{customer_id}/BankingServices/Authorize")))
        .json(&greatday("FlinksCapital"))
        .send()
        .await
        .expect("authorize")
        .json()
        .await
        .expect("json");
    assert_eq!(authorized["HttpStatusCode"], 200);
    server.kill().await;
    assert!(receiver.received().is_empty());

    let server = FinhookProcess::serve(dir.path()).await;
    let received = receiver.wait_for(2).await;
    let bodies: Vec<Value> = received.iter().map(|r| serde_json::from_slice(&r.body).expect("json")).collect();
    assert!(bodies.iter().all(|b| b["RequestId"] == authorized["RequestId"]));
    let mut types: Vec<&str> = bodies.iter().map(|b| b["ResponseType"].as_str().expect("type")).collect();
    types.sort_unstable();
    assert_eq!(types, ["GetAccountsDetail", "KYC"]);
    server.kill().await;
}
