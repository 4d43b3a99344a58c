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
