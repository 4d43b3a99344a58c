//! A real `finhook serve` process on the embedded store, killed with SIGKILL: an attempt in
//! flight is made again, and sandbox callbacks owed at the kill are sent after the restart.
//! (The shared store's crash takeover is in `postgres.rs`.)

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn an_attempt_in_flight_when_the_process_is_killed_is_made_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = TestReceiver::start(&[Reply::Hang], Reply::Status(200)).await;
    let server = FinhookProcess::serve(dir.path()).await;
    let created = server.admin(Method::POST, "/v1/instances", json!({ "name": "acme" })).await;
    assert_eq!(created.status().as_u16(), 201);
    let endpoint =
        server.admin(Method::POST, "/v1/instances/acme/endpoints", json!({ "url": receiver.url("/hook") })).await;
    assert_eq!(endpoint.status().as_u16(), 201);
    let accepted: serde_json::Value = server
        .admin(Method::POST, "/v1/instances/acme/callbacks", fixture("kyc.json"))
        .await
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
    let mut status = String::new();
    for _ in 0..200 {
        let path = format!("/v1/instances/acme/messages/{message_id}");
        let message: serde_json::Value = server.admin(Method::GET, &path, ()).await.json().await.expect("json");
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
    let created: Value = server
        .admin(Method::POST, "/v1/instances", json!({ "name": "bank", "mode": "sandbox" }))
        .await
        .json()
        .await
        .expect("json");
    // Ten minutes of simulated aggregation: the server dies long before the callbacks are due.
    let patched = server
        .admin(Method::PATCH, "/v1/instances/bank", json!({ "sandbox": { "aggregation_delay_ms": 600_000 } }))
        .await;
    assert_eq!(patched.status().as_u16(), 200);
    let endpoint =
        server.admin(Method::POST, "/v1/instances/bank/endpoints", json!({ "url": receiver.url("/flinks") })).await;
    assert_eq!(endpoint.status().as_u16(), 201);
    let customer_id = created["customer_id"].as_str().expect("customer id");
    let authorized: Value = reqwest::Client::new()
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
