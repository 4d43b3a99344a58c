//! Asymmetric signatures: an endpoint that signs with Ed25519 (Standard Webhooks `v1a`) is
//! verified with nothing but the instance's public JWK set, fetched without a key; a
//! rotation signs with both keys for its overlap; an HMAC endpoint beside it is unchanged.

use finhook_core::secret::EndpointSecret;
use finhook_core::signing::asymmetric::{verify_v1a, Jwks, PublicKey};
use finhook_core::signing::{self, StandardHeaders};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::spawn_app;
use crate::helpers::*;

/// The instance's JWK set, fetched as a receiver would: no key.
async fn jwks(app: &TestApp, instance: &str) -> (StatusCode, Option<String>, Value) {
    let response =
        app.http.get(app.url(&format!("/v1/instances/{instance}/.well-known/jwks.json"))).send().await.expect("get");
    let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, content_type, response.json().await.unwrap_or(Value::Null))
}

fn public_keys(set: &Value) -> Vec<PublicKey> {
    serde_json::from_value::<Jwks>(set.clone()).expect("a JWK set").ed25519_keys().expect("Ed25519 keys")
}

fn standard(got: &Received) -> StandardHeaders<'_> {
    StandardHeaders {
        id: got.header("webhook-id"),
        timestamp: got.header("webhook-timestamp"),
        signature: got.header("webhook-signature"),
    }
}

#[tokio::test]
async fn an_ed25519_endpoint_is_verified_with_the_public_jwk_set_alone() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let (status, _, empty) = jwks(&app, "acme").await;
    assert_eq!((status, empty), (StatusCode::OK, json!({ "keys": [] })), "no key until an endpoint needs one");

    let ed = app.create_endpoint("acme", json!({ "url": receiver.url("/ed"), "signing": "ed25519" })).await;
    let hmac = app.create_endpoint("acme", json!({ "url": receiver.url("/hmac") })).await;
    assert_eq!((ed["signing"].as_str(), hmac["signing"].as_str()), (Some("ed25519"), Some("hmac")));
    let (status, content_type, set) = jwks(&app, "acme").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/jwk-set+json"));
    let keys = public_keys(&set);
    assert_eq!(keys.len(), 1);
    assert!(!set.to_string().contains("\"d\""), "no private part is published: {set}");

    let body = fixture("kyc.json");
    app.ingest("acme", body.clone()).await;
    assert_eq!(app.deliver_due().await, 2);
    let received = receiver.wait_for(2).await;
    let ed_got = received.iter().find(|r| r.path == "/ed").expect("the ed25519 endpoint's");
    let hmac_got = received.iter().find(|r| r.path == "/hmac").expect("the hmac endpoint's");
    let now = t0().timestamp();

    let signature = ed_got.header("webhook-signature").expect("signature");
    assert!(signature.starts_with("v1a,") && !signature.contains("v1,"), "{signature}");
    assert_eq!(ed_got.header("finhook-signature-kid"), set["keys"][0]["kid"].as_str());
    assert_eq!(verify_v1a(&keys, standard(ed_got), &body, now, 300), Ok(()));
    assert_eq!(verify_v1a(&keys, standard(ed_got), b"{}", now, 300), Err(signing::VerifyError::SignatureMismatch));
    // The Flinks header is still the HMAC with the endpoint's own secret.
    let ed_secret = EndpointSecret::parse(ed["secret"].as_str().expect("secret")).expect("whsec");
    assert_eq!(signing::verify_flinks(&[ed_secret], ed_got.header("flinks-authenticity-key"), &body), Ok(()));

    let hmac_secret = EndpointSecret::parse(hmac["secret"].as_str().expect("secret")).expect("whsec");
    assert_eq!(signing::verify_standard(&[hmac_secret], standard(hmac_got), &body, now, 300), Ok(()));
    assert_eq!(hmac_got.header("finhook-signature-kid"), None);
    assert_eq!(verify_v1a(&keys, standard(hmac_got), &body, now, 300), Err(signing::VerifyError::SignatureMismatch));
}

#[tokio::test]
async fn a_rotated_signing_key_signs_beside_the_new_one_for_a_day() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let key = app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/"), "signing": "ed25519" })).await;
    let old = public_keys(&jwks(&app, "acme").await.2);

    let (status, rotated) = app.call(reqwest::Method::POST, "/v1/instances/acme/rotate-signing-key", &key, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated.as_array().map(Vec::len), Some(2), "{rotated}");
    assert!(rotated[0]["expires_at"].is_null() && rotated[1]["expires_at"].is_string(), "{rotated}");
    let both = public_keys(&jwks(&app, "acme").await.2);
    assert_eq!(both.len(), 2);
    let new: Vec<PublicKey> = both.iter().filter(|k| !old.contains(k)).copied().collect();

    let body = fixture("kyc.json");
    app.ingest("acme", body.clone()).await;
    app.deliver_due().await;
    let got = receiver.wait_for(1).await.remove(0);
    assert_eq!(got.header("webhook-signature").map(|s| s.matches("v1a,").count()), Some(2));
    assert_eq!(got.header("finhook-signature-kid").map(|k| k.split(' ').count()), Some(2));
    let now = t0().timestamp();
    assert_eq!(verify_v1a(&old, standard(&got), &body, now, 300), Ok(()), "a receiver with the old key still verifies");
    assert_eq!(verify_v1a(&new, standard(&got), &body, now, 300), Ok(()));

    app.clock.advance(chrono::Duration::hours(25));
    assert_eq!(public_keys(&jwks(&app, "acme").await.2), new, "the old key is gone from the set");
    app.ingest("acme", body.clone()).await;
    app.deliver_due().await;
    let later = receiver.wait_for(2).await.remove(1);
    let now = now + 25 * 3600;
    assert_eq!(later.header("webhook-signature").map(|s| s.matches("v1a,").count()), Some(1));
    assert_eq!(verify_v1a(&new, standard(&later), &body, now, 300), Ok(()));
    assert_eq!(verify_v1a(&old, standard(&later), &body, now, 300), Err(signing::VerifyError::SignatureMismatch));
}

#[tokio::test]
async fn signing_keys_refuse_what_they_cannot_serve() {
    let app = spawn_app().await;
    let key = app.create_instance("acme").await;
    let (status, _, problem) = jwks(&app, "nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let (status, problem) = app
        .call(
            reqwest::Method::POST,
            "/v1/instances/acme/endpoints",
            &key,
            Some(json!({ "url": "https://hooks.example.com/", "signing": "rsa" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem.to_string().contains("signing"), "the error names the field: {problem}");
    assert_eq!(jwks(&app, "acme").await.2, json!({ "keys": [] }), "nothing was made for a refused endpoint");
    let (status, _) = app.call(reqwest::Method::POST, "/v1/instances/acme/rotate-signing-key", "wrong", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The receiver kit caches the JWK set, and fetches it again when a webhook names a key it
/// has not seen: after a rotation whose overlap has run out, the next webhook is signed by
/// the new key alone, and it is still accepted.
#[tokio::test]
async fn a_receiver_fetches_the_jwk_set_again_for_a_key_it_has_not_seen() {
    use finhook_receiver::{JwksCache, Receiver, ReceiverStore, Verifier};
    let app = spawn_app().await;
    let key = app.create_instance("acme").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ReceiverStore::open(&format!("sqlite://{}", dir.path().join("r.db").display())).await.expect("store");
    let jwks =
        JwksCache::new(app.url("/v1/instances/acme/.well-known/jwks.json")).with_min_refetch(std::time::Duration::ZERO);
    // The server runs on a manual clock set in 2026; the receiver checks timestamps against
    // the wall clock, so its tolerance is widened to cover the difference.
    let verifier = Verifier::new(vec![]).with_jwks(jwks).with_tolerance(20 * 365 * 86_400);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, finhook_receiver::router(Receiver::new(store, verifier))).await;
    });
    app.create_endpoint("acme", json!({ "url": format!("{base}/hook"), "signing": "ed25519" })).await;
    let status = |message: Value| message["deliveries"][0]["status"].as_str().map(str::to_string);

    let first = app.ingest("acme", fixture("kyc.json")).await;
    app.deliver_due().await;
    assert_eq!(status(app.message("acme", &first).await).as_deref(), Some("delivered"));

    let (rotated, body) = app.call(reqwest::Method::POST, "/v1/instances/acme/rotate-signing-key", &key, None).await;
    assert_eq!(rotated, StatusCode::OK, "{body}");
    app.clock.advance(chrono::Duration::hours(25));
    let second = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    app.deliver_due().await;
    let message = app.message("acme", &second).await;
    assert_eq!(status(message.clone()).as_deref(), Some("delivered"), "the receiver refused the new key: {message}");
    server.abort();
}
