//! TLS as Flinks demands: a certificate chaining to a trusted root is accepted, a
//! self-signed one is refused with error class `tls`.

use serde_json::json;

use super::spawn_app_with;
use crate::helpers::*;

#[tokio::test]
async fn a_certificate_from_a_trusted_private_ca_is_accepted() {
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write_file(dir.path(), "ca.pem", &pki.ca_pem);
    let app = spawn_app_with(Options { extra_root_ca: vec![ca], ..Options::default() }).await;
    let receiver = TestReceiver::start_tls(&pki.leaf_pem, &pki.leaf_key_pem, &[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": format!("https://localhost:{}/hook", receiver.addr.port()) })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body.as_ref(), fixture("kyc.json").as_slice());
    assert_eq!(app.message("acme", &id).await["deliveries"][0]["status"], "delivered");
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused_as_tls() {
    let self_signed = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    // Trusting an unrelated private CA must not make a self-signed leaf acceptable.
    let ca = write_file(dir.path(), "ca.pem", &pki.ca_pem);
    let app = spawn_app_with(Options { extra_root_ca: vec![ca], ..Options::default() }).await;
    let receiver = TestReceiver::start_tls(
        &self_signed.cert.pem(),
        &self_signed.key_pair.serialize_pem(),
        &[],
        Reply::Status(200),
    )
    .await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": format!("https://localhost:{}/hook", receiver.addr.port()) })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let message = app.message("acme", &id).await;
    let attempt = &message["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["error_class"], "tls", "{attempt}");
    assert_eq!(message["deliveries"][0]["status"], "pending", "retried later like any failure");
    assert!(receiver.received().is_empty(), "no request crossed the refused handshake");
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_as_tls() {
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write_file(dir.path(), "ca.pem", &pki.ca_pem);
    let app = spawn_app_with(Options { extra_root_ca: vec![ca], ..Options::default() }).await;
    let receiver = TestReceiver::start_tls(&pki.leaf_pem, &pki.leaf_key_pem, &[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    // The leaf names only `localhost`; the same server reached as 127.0.0.1 must not verify.
    app.create_endpoint("acme", json!({ "url": format!("https://127.0.0.1:{}/hook", receiver.addr.port()) })).await;
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let attempt = app.message("acme", &id).await["deliveries"][0]["attempts"][0].clone();
    assert_eq!(attempt["error_class"], "tls", "{attempt}");
    assert!(attempt["error_detail"].as_str().is_some_and(|d| d.contains("not valid for name")), "{attempt}");
    assert!(receiver.received().is_empty());
}

/// Mutual TLS: a receiver that asks for a client certificate signed by its CA gets the
/// endpoint's on every attempt; an endpoint without one is refused in the handshake
/// (error class `tls`); the key is never shown back.
#[tokio::test]
async fn an_endpoint_presents_its_client_certificate_and_one_without_is_refused() {
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write_file(dir.path(), "ca.pem", &pki.ca_pem);
    let app = spawn_app_with(Options { extra_root_ca: vec![ca], ..Options::default() }).await;
    let receiver = TestReceiver::start_with_tls(requiring_client_certificates(&pki), &[], Reply::Status(200)).await;
    let url = format!("https://localhost:{}/hook", receiver.addr.port());
    app.create_instance("acme").await;
    let with = app
        .create_endpoint(
            "acme",
            json!({ "url": url, "client_certificate": { "cert_pem": pki.client_pem, "key_pem": pki.client_key_pem } }),
        )
        .await;
    assert_eq!(with["client_certificate"]["subject"], "CN=finhook.lender.example", "{with}");
    assert!(with["client_certificate"]["expires_at"].is_string(), "{with}");
    assert!(!with.to_string().contains("PRIVATE KEY"), "the key is never shown: {with}");
    let without = app.create_endpoint("acme", json!({ "url": url })).await;
    assert!(without["client_certificate"].is_null());

    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2);
    assert_eq!(receiver.wait_for(1).await.len(), 1, "only the attempt with the certificate got through");
    let message = app.message("acme", &id).await;
    let of = |endpoint: &serde_json::Value| {
        message["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .find(|d| d["endpoint_id"] == endpoint["id"])
            .cloned()
            .expect("its delivery")
    };
    assert_eq!(of(&with)["status"], "delivered", "{message}");
    assert_eq!(of(&without)["attempts"][0]["error_class"], "tls", "{message}");

    // Removing the certificate makes the next attempt fail the handshake too.
    let path = format!("/v1/instances/acme/endpoints/{}", with["id"].as_str().expect("id"));
    let (status, patched) = app.admin(reqwest::Method::PATCH, &path, Some(json!({ "client_certificate": null }))).await;
    assert_eq!(status, 200, "{patched}");
    assert!(patched["client_certificate"].is_null(), "{patched}");
}

/// Bad client certificates are refused with the field to fix, and nothing is stored.
#[tokio::test]
async fn a_bad_client_certificate_is_refused_with_the_field_to_fix() {
    let pki = test_pki();
    let other = test_pki();
    let app = spawn_app_with(Options::default()).await;
    let key = app.create_instance("acme").await;
    let cases = [
        ("not a pem", pki.client_key_pem.clone(), "$.client_certificate.cert_pem"),
        (pki.client_pem.as_str(), "not a key".to_string(), "$.client_certificate.key_pem"),
        (pki.client_pem.as_str(), other.client_key_pem.clone(), "$.client_certificate.key_pem"),
    ];
    for (cert, private, path) in cases {
        let body = json!({ "url": "https://hooks.example.com/", "client_certificate": { "cert_pem": cert, "key_pem": private } });
        let (status, problem) = app.call(reqwest::Method::POST, "/v1/instances/acme/endpoints", &key, Some(body)).await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem.to_string().contains(path), "{path}: {problem}");
        assert!(!problem.to_string().contains("PRIVATE KEY"), "{problem}");
    }
    let (_, listed) = app.call(reqwest::Method::GET, "/v1/instances/acme/endpoints", &key, None).await;
    assert_eq!(listed, json!([]), "nothing was stored");
}
