//! TLS as Flinks demands: a certificate chaining to a trusted root is accepted, a
//! self-signed one is refused with error class `tls`.

use chrono::Timelike;
use reqwest::Method;
use serde_json::json;

use super::spawn_app_with;
use crate::helpers::*;

/// An app that trusts `ca_pem` as an extra root (read at start-up).
async fn app_trusting(ca_pem: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = write_file(dir.path(), "ca.pem", ca_pem);
    spawn_app_with(Options { extra_root_ca: vec![ca], ..Options::default() }).await
}

/// The value of `series` (name and labels) in the app's `/metrics`.
async fn gauge(app: &TestApp, series: &str) -> i64 {
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

#[tokio::test]
async fn a_certificate_from_a_trusted_private_ca_is_accepted() {
    let pki = test_pki();
    let app = app_trusting(&pki.ca_pem).await;
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
    // Trusting an unrelated private CA must not make a self-signed leaf acceptable.
    let app = app_trusting(&pki.ca_pem).await;
    let receiver = TestReceiver::start_tls(
        &self_signed.cert.pem(),
        &self_signed.key_pair.serialize_pem(),
        &[],
        Reply::Status(200),
    )
    .await;
    app.create_instance("acme").await;
    let url = format!("https://localhost:{}/hook", receiver.addr.port());
    // The certificate watch sees it first: refused, and nothing stored, unless asked to.
    let (status, refused) = app.admin(Method::POST, "/v1/instances/acme/endpoints", Some(json!({ "url": url }))).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["path"], "$.url");
    let detail = refused["detail"].as_str().expect("detail");
    assert!(detail.contains("unknown issuer") && detail.contains("\"verify\": false"), "{detail}");
    let (_, listed) = app.admin(Method::GET, "/v1/instances/acme/endpoints", None).await;
    assert_eq!(listed["data"], json!([]), "nothing stored");
    let endpoint = app.create_endpoint("acme", json!({ "url": url, "verify": false })).await;
    let report = &endpoint["certificate"];
    assert_eq!((report["reached"].as_bool(), report["chain_valid"].as_bool()), (Some(true), Some(false)), "{report}");
    assert!(report["problem"].as_str().is_some_and(|p| p.contains("unknown issuer")), "{report}");
    // The watch forgets it, to see the failed attempt make it look again.
    let store = app.state.store.clone();
    let endpoint_id = finhook_core::ids::EndpointId::parse(endpoint["id"].as_str().expect("id")).expect("id");
    store.set_endpoint_certificate(&endpoint_id, None).await.expect("forget");
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let message = app.message("acme", &id).await;
    let attempt = &message["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["error_class"], "tls", "{attempt}");
    assert_eq!(message["deliveries"][0]["status"], "pending", "retried later like any failure");
    assert!(receiver.received().is_empty(), "no request crossed the refused handshake");

    // A failure in TLS asks the certificate watch for a look at once, not a day later.
    let watch = &app.state.certificates;
    assert_eq!(finhook_server::delivery::certificate::check_requested(store.as_ref(), watch).await.expect("look"), 1);
    let (_, shown) = app.admin(Method::GET, &format!("/v1/instances/acme/endpoints/{endpoint_id}"), None).await;
    assert!(shown["certificate"]["problem"].as_str().is_some_and(|p| p.contains("unknown issuer")), "{shown}");
    // The retry fails again; the watch looked within the hour and does not look again.
    app.clock.advance(chrono::Duration::minutes(30));
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(finhook_server::delivery::certificate::check_requested(store.as_ref(), watch).await.expect("look"), 0);
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused_as_tls() {
    let pki = test_pki();
    let app = app_trusting(&pki.ca_pem).await;
    let receiver = TestReceiver::start_tls(&pki.leaf_pem, &pki.leaf_key_pem, &[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    // The leaf names only `localhost`; the same server reached as 127.0.0.1 must not verify.
    let url = format!("https://127.0.0.1:{}/hook", receiver.addr.port());
    let (status, refused) = app.admin(Method::POST, "/v1/instances/acme/endpoints", Some(json!({ "url": url }))).await;
    assert_eq!(status, 422, "{refused}");
    assert!(refused["detail"].as_str().is_some_and(|d| d.contains("does not name 127.0.0.1")), "{refused}");
    let endpoint = app.create_endpoint("acme", json!({ "url": url, "verify": false })).await;
    let report = &endpoint["certificate"];
    assert_eq!(
        (report["chain_valid"].as_bool(), report["hostname_match"].as_bool()),
        (Some(true), Some(false)),
        "{report}"
    );
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
    let app = app_trusting(&pki.ca_pem).await;
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
    let expires_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(with["client_certificate"]["expires_at"].clone()).expect("an expiry");
    // Watched like the server's: the time left, counted from the app's clock.
    let series = format!(
        "finhook_endpoint_client_certificate_expiry_seconds{{instance=\"acme\",endpoint=\"{}\"}}",
        with["id"].as_str().expect("id")
    );
    let seconds = gauge(&app, &series).await;
    assert_eq!(seconds, (expires_at - t0()).num_seconds());
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
    assert_eq!(listed["data"], json!([]), "nothing was stored");
}

/// The certificate watch: a new endpoint's answer says what its server showed (TLS
/// version, chain, hostname, expiry); `/metrics` has the time left until it expires; a
/// server that cannot be reached yet is stored (nothing is known of its certificate); the
/// daily check looks at every watched endpoint again.
#[tokio::test]
async fn the_certificate_watch_reports_what_an_endpoint_shows_and_how_long_it_has_left() {
    let pki = test_pki_expiring_in(chrono::Duration::days(5));
    let app = app_trusting(&pki.ca_pem).await;
    let receiver = TestReceiver::start_tls(&pki.leaf_pem, &pki.leaf_key_pem, &[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint =
        app.create_endpoint("acme", json!({ "url": format!("https://localhost:{}/hook", receiver.addr.port()) })).await;
    let report = endpoint["certificate"].clone();
    assert_eq!(report["reached"], true, "{report}");
    assert_eq!((report["chain_valid"].as_bool(), report["hostname_match"].as_bool()), (Some(true), Some(true)));
    assert_eq!(report["tls_version"], "TLS 1.3");
    assert_eq!(report["problem"], serde_json::Value::Null);
    let expires_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(report["expires_at"].clone()).expect("an expiry");
    let left = expires_at - chrono::Utc::now();
    assert!(left > chrono::Duration::days(4) && left <= chrono::Duration::days(5), "{expires_at}");

    let id = endpoint["id"].as_str().expect("id");
    let series = format!("finhook_endpoint_certificate_expiry_seconds{{instance=\"acme\",endpoint=\"{id}\"}}");
    let seconds = gauge(&app, &series).await;
    // Counted from the app's clock (a manual one, months before the real now).
    assert_eq!(seconds, (expires_at - t0()).num_seconds());

    // Not reachable yet: stored, with what could not be done.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("addr").port();
    let later = app.create_endpoint("acme", json!({ "url": format!("https://localhost:{closed}/hook") })).await;
    assert_eq!(later["certificate"]["reached"], false, "{later}");
    assert!(later["certificate"]["problem"].as_str().is_some_and(|p| p.contains("could not check")), "{later}");

    // The daily check looks at both again, records what it found, and tells whoever takes
    // `certificate.expiring` (once per certificate, however many days it sees it).
    let pager = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_endpoint("acme", json!({ "url": pager.url("/"), "event_types": ["certificate.expiring"] })).await;
    let store = app.state.store.clone();
    let endpoint_id = finhook_core::ids::EndpointId::parse(id).expect("id");
    store.set_endpoint_certificate(&endpoint_id, None).await.expect("forget");
    let watched =
        finhook_server::delivery::certificate::check_all(store.as_ref(), &app.state.certificates).await.expect("check");
    assert_eq!(watched, 2);
    let (_, shown) = app.admin(Method::GET, &format!("/v1/instances/acme/endpoints/{id}"), None).await;
    assert_eq!(shown["certificate"]["chain_valid"], true, "{shown}");
    assert_eq!(shown["certificate"]["expires_at"], report["expires_at"]);
    assert_eq!(app.state.events.pass().await.expect("events").published, 1);
    assert_eq!(app.deliver_due().await, 1);
    let event: serde_json::Value = serde_json::from_slice(&pager.received()[0].body).expect("json");
    assert_eq!((event["type"].as_str(), event["endpoint_id"].as_str()), (Some("certificate.expiring"), Some(id)));
    assert_eq!(event["data"]["certificate"], "server");
    assert_eq!(event["data"]["days_left"], 4, "{event}");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(event["data"]["expires_at"].as_str().expect("expiry")).expect("time"),
        expires_at.with_nanosecond(0).expect("whole seconds")
    );
    finhook_server::delivery::certificate::check_all(store.as_ref(), &app.state.certificates).await.expect("check");
    assert_eq!(app.state.events.pass().await.expect("events").published, 0, "the same certificate is told once");
}
