//! One endpoint's activity through the API: a test callback goes to that endpoint alone,
//! signed with its secret, and shows up as a message; an endpoint's deliveries page newest
//! first, each with its last attempt.

use finhook_core::secret::EndpointSecret;
use finhook_core::signing::{self, StandardHeaders};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::spawn_app;
use crate::helpers::*;

#[tokio::test]
async fn a_test_callback_goes_to_its_endpoint_alone_signed_and_listed() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let acme_key = app.create_instance("acme").await;
    app.create_instance("other").await;
    let tested = app.create_endpoint("acme", json!({ "url": receiver.url("/tested") })).await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/bystander") })).await;
    let wealth =
        app.create_endpoint("acme", json!({ "url": receiver.url("/wealth"), "event_types": ["Investments"] })).await;
    let events_only =
        app.create_endpoint("acme", json!({ "url": receiver.url("/ops"), "event_types": ["endpoint.failing"] })).await;
    let id = tested["id"].as_str().expect("id");

    // An instance key may test its own endpoints.
    let (status, sent) =
        app.call(Method::POST, &format!("/v1/instances/acme/endpoints/{id}/test"), &acme_key, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    assert_eq!((sent["response_type"].as_str(), sent["tag"].as_str()), (Some("KYC"), Some("finhook-test")));
    assert_eq!(app.deliver_due().await, 1, "one delivery: the tested endpoint's, not the bystander's");
    let got = &receiver.wait_for(1).await[0];
    assert_eq!(got.path, "/tested");
    let body: Value = serde_json::from_slice(&got.body).expect("a JSON callback");
    assert_eq!((body["ResponseType"].as_str(), body["Tag"].as_str()), (Some("KYC"), Some("finhook-test")));
    let login = body["Login"]["Id"].as_str().expect("a LoginId");
    assert!(login.len() == 36 && login.matches('-').count() == 4, "a fresh UUID, never a customer's: {login}");
    let secret = EndpointSecret::parse(tested["secret"].as_str().expect("secret")).expect("secret");
    let headers = StandardHeaders {
        id: got.header("webhook-id"),
        timestamp: got.header("webhook-timestamp"),
        signature: got.header("webhook-signature"),
    };
    assert_eq!(signing::verify_standard(&[secret], headers, &got.body, t0().timestamp(), 300), Ok(()));
    assert_eq!(got.header("webhook-id"), sent["message_id"].as_str(), "the test is a message like any other");
    let (status, message) = app
        .admin(Method::GET, &format!("/v1/instances/acme/messages/{}", sent["message_id"].as_str().expect("id")), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(message["deliveries"].as_array().map(Vec::len), Some(1));
    assert_eq!(message["deliveries"][0]["status"], "delivered");

    // The first callback type an endpoint takes; none for an endpoint of events only.
    let wealth_id = wealth["id"].as_str().expect("id");
    let (status, sent) = app.admin(Method::POST, &format!("/v1/instances/acme/endpoints/{wealth_id}/test"), None).await;
    assert_eq!((status, sent["response_type"].as_str()), (StatusCode::ACCEPTED, Some("Investments")), "{sent}");
    let ops_id = events_only["id"].as_str().expect("id");
    let (status, refused) = app.admin(Method::POST, &format!("/v1/instances/acme/endpoints/{ops_id}/test"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(refused["detail"].as_str().is_some_and(|d| d.contains("only operational events")), "{refused}");
    // Another instance's endpoint is not found, as one that does not exist.
    let (status, _) = app.admin(Method::POST, &format!("/v1/instances/other/endpoints/{id}/test"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        app.call(Method::POST, &format!("/v1/instances/other/endpoints/{id}/test"), &acme_key, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, audit) = app.admin(Method::GET, "/v1/audit?instance=acme", None).await;
    let tests = audit["data"].as_array().expect("entries").iter().filter(|e| e["action"] == "endpoint.test").count();
    assert_eq!(tests, 2, "each test that sent something is in the audit log: {audit}");
}

#[tokio::test]
async fn an_endpoints_deliveries_page_newest_first_with_their_last_attempt() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": receiver.url("/hook") })).await;
    let other = app.create_endpoint("acme", json!({ "url": receiver.url("/other"), "enabled": false })).await;
    let id = endpoint["id"].as_str().expect("id");
    let first = app.ingest("acme", fixture("kyc.json")).await;
    let second = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    let third = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 3, "the first of them answered 500");

    let path = format!("/v1/instances/acme/endpoints/{id}/deliveries");
    let (status, page) = app.admin(Method::GET, &format!("{path}?limit=2"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let data = page["data"].as_array().expect("data");
    let messages: Vec<_> = data.iter().map(|d| d["message_id"].as_str().unwrap_or_default()).collect();
    assert_eq!(messages, [third.as_str(), second.as_str()], "newest first");
    assert_eq!(data[1]["response_type"], "GetAccountsDetail");
    assert_eq!(data[0]["endpoint_id"], id);
    let cursor = page["next_cursor"].as_str().expect("a next page (the last message of this one)");
    let (_, older) = app.admin(Method::GET, &format!("{path}?limit=2&cursor={cursor}"), None).await;
    let last = &older["data"][0];
    assert_eq!((last["message_id"].as_str(), older["data"].as_array().map(Vec::len)), (Some(first.as_str()), Some(1)));
    assert!(older["next_cursor"].is_null(), "the last page: {older}");
    // Its one attempt so far: the 500, with its retry due.
    assert_eq!((last["status"].as_str(), last["attempts_made"].as_u64()), (Some("pending"), Some(1)));
    let attempts = last["attempts"].as_array().expect("attempts");
    assert_eq!((attempts.len(), attempts[0]["status_code"].as_u64()), (1, Some(500)), "{last}");

    // The disabled endpoint was sent nothing; bad input is named.
    let other_id = other["id"].as_str().expect("id");
    let (status, none) =
        app.admin(Method::GET, &format!("/v1/instances/acme/endpoints/{other_id}/deliveries"), None).await;
    assert_eq!((status, none), (StatusCode::OK, json!({ "data": [], "next_cursor": null })));
    let (status, bad) = app.admin(Method::GET, &format!("{path}?limit=0"), None).await;
    assert_eq!((status, bad["errors"][0]["path"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit")), "{bad}");
    let (status, bad) = app.admin(Method::GET, &format!("{path}?cursor=nope"), None).await;
    assert_eq!(
        (status, bad["errors"][0]["path"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("cursor")),
        "{bad}"
    );
}

#[tokio::test]
async fn a_page_never_splits_a_message_and_walks_past_a_window_without_any() {
    use finhook_server::store::activity::WINDOW;
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let wealth =
        app.create_endpoint("acme", json!({ "url": receiver.url("/w"), "event_types": ["Investments"] })).await;
    let id = wealth["id"].as_str().expect("id");
    let old = app.ingest("acme", fixture("investments.json")).await;
    let new = app.ingest("acme", fixture("investments.json")).await;
    // A redelivery: the old message now has two deliveries to the endpoint.
    let (status, _) =
        app.admin(Method::POST, &format!("/v1/instances/acme/messages/{old}/redeliver"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let path = format!("/v1/instances/acme/endpoints/{id}/deliveries");
    let (_, first) = app.admin(Method::GET, &format!("{path}?limit=2"), None).await;
    let messages = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| d["message_id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        messages(&first),
        std::slice::from_ref(&new),
        "the old message's two deliveries do not fit beside it: {first}"
    );
    let cursor = first["next_cursor"].as_str().expect("more");
    let (_, second) = app.admin(Method::GET, &format!("{path}?limit=2&cursor={cursor}"), None).await;
    assert_eq!(messages(&second), [old.clone(), old.clone()], "both, the newer round first: {second}");
    assert!(second["data"][0]["id"].as_str() > second["data"][1]["id"].as_str());

    // A window of messages this endpoint does not take: a page looks at WINDOW of them, comes
    // back empty with a cursor, and the next one finds the older deliveries.
    app.store_bare_messages("acme", WINDOW as usize).await;
    let (_, empty) = app.admin(Method::GET, &path, None).await;
    assert_eq!(empty["data"], json!([]), "none among the newest {WINDOW}");
    let cursor = empty["next_cursor"].as_str().expect("a cursor past the window");
    let (_, found) = app.admin(Method::GET, &format!("{path}?cursor={cursor}"), None).await;
    assert_eq!(messages(&found), [new, old.clone(), old], "{found}");
    assert!(found["next_cursor"].is_null());
}
