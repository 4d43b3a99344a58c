//! The conformance probe: `finhook probe` passes `finhook listen` on every check, and each
//! deliberately wrong receiver written here is caught by exactly the checks of its fault.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use finhook_core::secret::EndpointSecret;
use finhook_core::signing::{self, StandardHeaders};
use finhook_server::delivery::certificate::CertificateWatch;
use finhook_server::delivery::client::DeliveryClient;
use finhook_server::delivery::target::TargetPolicy;
use finhook_server::probe::{self, Outcome, Report, Target};
use serde_json::Value;

use crate::helpers::*;
use crate::pki::{test_pki, test_pki_expiring_in};

/// What a receiver gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Answers 204 No Content: fine for HTTP, not for Flinks, which counts only 200.
    Answers204,
    /// Verifies a signature when there is one, and takes a request without any.
    TakesUnsigned,
    /// Verifies signatures but not how old or new their timestamp is.
    NoTimestampWindow,
    /// Stores a repeated webhook-id again.
    NoDeduplication,
    /// Refuses a login's GetAccountsDetail before its KYC.
    NeedsKycFirst,
    /// Takes bodies of at most 1 MiB.
    SmallBodies,
    /// Checks the signature's shape, never computes it.
    ChecksOnlyTheShape,
}

#[derive(Clone)]
struct Receiver {
    fault: Fault,
    secret: EndpointSecret,
    /// Per LoginId, the webhook-ids stored, in order.
    stored: Arc<Mutex<HashMap<String, Vec<String>>>>,
    kyc_seen: Arc<Mutex<HashSet<String>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature = header("webhook-signature");
    if signature.is_none() && r.fault == Fault::TakesUnsigned {
        // The bug: no signature, nothing to verify.
    } else if r.fault == Fault::ChecksOnlyTheShape {
        if !signature.is_some_and(|s| s.starts_with("v1,") && s.len() > 40) {
            return StatusCode::UNAUTHORIZED;
        }
    } else {
        let tolerance = if r.fault == Fault::NoTimestampWindow { i64::MAX / 4 } else { 300 };
        let standard = StandardHeaders { id: header("webhook-id"), timestamp: header("webhook-timestamp"), signature };
        let now = chrono::Utc::now().timestamp();
        if signing::verify_standard(std::slice::from_ref(&r.secret), standard, &body, now, tolerance).is_err() {
            return StatusCode::UNAUTHORIZED;
        }
    }
    if r.fault == Fault::SmallBodies && body.len() > 1 << 20 {
        return StatusCode::PAYLOAD_TOO_LARGE;
    }
    let Ok(callback) = serde_json::from_slice::<Value>(&body) else { return StatusCode::BAD_REQUEST };
    let login = callback["Login"]["Id"].as_str().unwrap_or_default().to_string();
    let kind = callback["ResponseType"].as_str().unwrap_or_default();
    if kind == "KYC" {
        r.kyc_seen.lock().expect("seen").insert(login.clone());
    } else if r.fault == Fault::NeedsKycFirst && !r.kyc_seen.lock().expect("seen").contains(&login) {
        return StatusCode::CONFLICT;
    }
    let id = header("webhook-id").unwrap_or_default().to_string();
    let mut stored = r.stored.lock().expect("stored");
    let ids = stored.entry(login).or_default();
    if r.fault == Fault::NoDeduplication || !ids.contains(&id) {
        ids.push(id);
    }
    if r.fault == Fault::Answers204 {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    }
}

async fn shown(State(r): State<Receiver>, Path(login): Path<String>) -> Json<Vec<String>> {
    Json(r.stored.lock().expect("stored").get(&login).cloned().unwrap_or_default())
}

/// A receiver with `fault` on 127.0.0.1 (plain HTTP); its base URL.
async fn wrong_receiver(fault: Fault, secret: &EndpointSecret) -> (String, tokio::task::JoinHandle<()>) {
    let state = Receiver { fault, secret: secret.clone(), stored: Arc::default(), kyc_seen: Arc::default() };
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/stored/{login}", get(shown))
        .layer(DefaultBodyLimit::max(16 << 20))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, server)
}

async fn run_probe(base: &str, secret: &EndpointSecret) -> Report {
    let policy = Arc::new(TargetPolicy { allow_insecure_loopback: true, allowed_networks: Vec::new() });
    let client = DeliveryClient::new(policy.clone(), &[], Duration::from_secs(10)).expect("client");
    let watch = CertificateWatch::new(policy, &[], Duration::from_secs(10)).expect("watch");
    let target = Target {
        url: format!("{base}/hook"),
        secret: secret.clone(),
        check_url: Some(format!("{base}/stored/{{login_id}}")),
        identity: None,
    };
    probe::probe(&client, &watch, &target, chrono::Utc::now()).await.expect("a report")
}

fn failed(report: &Report) -> BTreeSet<&'static str> {
    report.checks.iter().filter(|c| c.outcome == Outcome::Fail).map(|c| c.id).collect()
}

#[tokio::test]
async fn each_wrong_receiver_is_caught_by_exactly_the_checks_of_its_fault() {
    let secret = EndpointSecret::generate();
    let expected: [(Fault, &[&str]); 8] = [
        (Fault::None, &[]),
        (Fault::Answers204, &["answers_200"]),
        (Fault::TakesUnsigned, &["rejects_missing_signature"]),
        (Fault::NoTimestampWindow, &["rejects_future_timestamp", "rejects_stale_timestamp"]),
        (Fault::NoDeduplication, &["deduplicates"]),
        (Fault::NeedsKycFirst, &["out_of_order"]),
        (Fault::SmallBodies, &["large_body"]),
        // Nothing computed: neither the HMAC nor the timestamp's window.
        (
            Fault::ChecksOnlyTheShape,
            &["rejects_altered_body", "rejects_bad_signature", "rejects_future_timestamp", "rejects_stale_timestamp"],
        ),
    ];
    for (fault, checks) in expected {
        let (base, server) = wrong_receiver(fault, &secret).await;
        let report = run_probe(&base, &secret).await;
        server.abort();
        let want: BTreeSet<&str> = checks.iter().copied().collect();
        assert_eq!(failed(&report), want, "{fault:?}: {report:#?}");
        assert_eq!(report.passed, checks.is_empty(), "{fault:?}");
        assert_eq!(report.checks.len(), 10, "every check ran");
        let tls = report.checks.iter().find(|c| c.id == "tls").expect("tls");
        assert_eq!(tls.outcome, Outcome::Skipped, "plain HTTP on loopback has no TLS to grade");
        let dedupe = report.checks.iter().find(|c| c.id == "deduplicates").expect("dedupe");
        if fault == Fault::None {
            assert!(dedupe.detail.contains("shows the webhook-id 1 time(s)"), "{}", dedupe.detail);
        }
    }
}

/// Runs `finhook probe` with `args`; its exit code and stdout.
async fn finhook_probe(args: &[String], secret: &EndpointSecret) -> (Option<i32>, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .arg("probe")
        .args(args)
        .env("FINHOOK_PROBE_SECRET", secret.expose())
        .output()
        .await
        .expect("run finhook probe");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn finhook_listen_passes_every_check_and_a_certificate_near_its_end_fails_tls_alone() {
    for (pki, expect_tls) in
        [(test_pki(), Outcome::Pass), (test_pki_expiring_in(chrono::Duration::days(5)), Outcome::Fail)]
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = write_file(dir.path(), "leaf.pem", &pki.leaf_pem);
        let key = write_file(dir.path(), "leaf.key", &pki.leaf_key_pem);
        let ca = write_file(dir.path(), "ca.pem", &pki.ca_pem);
        let secret = EndpointSecret::generate();
        let mut args: Vec<String> =
            ["listen", "--ui", "--listen", "127.0.0.1:0", "--database"].map(String::from).to_vec();
        args.push(format!("sqlite://{}", dir.path().join("receiver.db").display()));
        for (flag, value) in [
            ("--secret", secret.expose().to_string()),
            ("--tls-cert", cert.display().to_string()),
            ("--tls-key", key.display().to_string()),
        ] {
            args.push(flag.to_string());
            args.push(value);
        }
        let listen = FinhookProcess::start(dir.path(), &args, "finhook listen on https://").await;
        let base = format!("https://localhost:{}", listen.addr.port());
        let probe_args: Vec<String> = [
            &format!("{base}/hooks"),
            "--allow-insecure-loopback",
            "--extra-root-ca",
            &ca.display().to_string(),
            "--check-url",
            &format!("{base}/logins/{{login_id}}?token={LISTEN_UI_TOKEN}"),
            "--json",
        ]
        .map(String::from)
        .to_vec();
        let (code, stdout, stderr) = finhook_probe(&probe_args, &secret).await;
        let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}{stderr}"));
        let outcomes: HashMap<&str, &str> = report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| (c["id"].as_str().unwrap_or_default(), c["outcome"].as_str().unwrap_or_default()))
            .collect();
        assert_eq!(outcomes.len(), 10, "{report}");
        for (id, outcome) in &outcomes {
            let want = if *id == "tls" { serde_json::to_value(expect_tls).expect("json") } else { "pass".into() };
            assert_eq!(Value::from(*outcome), want, "{id}: {report}");
        }
        assert_eq!(code, Some(if expect_tls == Outcome::Pass { 0 } else { 1 }), "{stderr}");
        listen.kill().await;
    }
}

#[tokio::test]
async fn the_probe_refuses_a_bad_secret_and_a_private_address_up_front() {
    let secret = EndpointSecret::generate();
    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .args(["probe", "https://hooks.example.com/", "--secret", "fhk_an_api_key_not_a_secret"])
        .output()
        .await
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--secret"), "{}", String::from_utf8_lossy(&bad.stderr));
    let (code, _, stderr) = finhook_probe(&["https://10.0.0.8/hook".to_string()], &secret).await;
    assert_eq!(code, Some(2));
    assert!(stderr.contains("10.0.0.8") && stderr.contains("--allow-private-network"), "{stderr}");
    let (code, _, stderr) = finhook_probe(&["http://127.0.0.1:9/hook".to_string()], &secret).await;
    assert_eq!(code, Some(2), "plain http to loopback needs the flag");
    assert!(stderr.contains("--allow-insecure-loopback"), "{stderr}");
}

#[tokio::test]
async fn an_endpoint_is_probed_through_the_api_with_its_own_secret() {
    use finhook_receiver::{Receiver, ReceiverSecret, ReceiverStore, Verifier};
    use reqwest::Method;
    use serde_json::json;
    // The receiver checks webhook-timestamp against its real clock, so the sender's must agree.
    let clock = finhook_server::clock::ManualClock::starting_at(chrono::Utc::now());
    let app = spawn_app_with(Options { clock: Some(clock), ..Options::default() }).await;
    app.create_instance("acme").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let endpoint = app.create_endpoint("acme", json!({ "url": format!("{base}/hooks") })).await;
    let secret = endpoint["secret"].as_str().expect("secret");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ReceiverStore::open(&format!("sqlite://{}", dir.path().join("r.db").display())).await.expect("store");
    let receiver =
        Receiver::new(store, Verifier::new(vec![ReceiverSecret::new(secret)])).pages(finhook_receiver::Pages::Open);
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, finhook_receiver::router(receiver)).await;
    });

    let path = format!("/v1/instances/acme/endpoints/{}/probe", endpoint["id"].as_str().expect("id"));
    let check_url = format!("{base}/logins/{{login_id}}");
    let (status, report) = app.admin(Method::POST, &path, Some(json!({ "check_url": check_url }))).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["passed"], true, "{report}");
    let dedupe = report["checks"].as_array().expect("checks").iter().find(|c| c["id"] == "deduplicates").cloned();
    assert!(dedupe.is_some_and(|c| c["detail"].as_str().is_some_and(|d| d.contains("1 time(s)"))), "{report}");
    let (status, report) = app.admin(Method::POST, &path, None).await;
    assert_eq!((status.as_u16(), &report["passed"]), (200, &json!(true)), "no body: no check URL");
    assert_eq!(app.messages("acme", "").await["data"], json!([]), "the probe's callbacks are not messages");

    let (status, problem) =
        app.admin(Method::POST, &path, Some(json!({ "check_url": "http://10.0.0.1/{login_id}" }))).await;
    assert_eq!((status.as_u16(), &problem["errors"][0]["path"]), (422, &json!("$.check_url")), "{problem}");
    let (status, problem) = app.admin(Method::POST, &path, Some(json!({ "check": 1 }))).await;
    assert_eq!(status.as_u16(), 422, "unknown fields are named: {problem}");
    let ed = app.create_endpoint("acme", json!({ "url": format!("{base}/ed"), "signing": "ed25519" })).await;
    let ed_path = format!("/v1/instances/acme/endpoints/{}/probe", ed["id"].as_str().expect("id"));
    let (status, problem) = app.admin(Method::POST, &ed_path, None).await;
    assert_eq!(status.as_u16(), 409, "{problem}");
    let (_, audit) = app.admin(Method::GET, "/v1/audit", None).await;
    let probes = audit["data"].as_array().expect("entries").iter().filter(|e| e["action"] == "endpoint.probe").count();
    assert_eq!(probes, 2, "each probe that ran is in the audit log");
    server.abort();
}

#[tokio::test]
async fn a_receiver_that_never_answers_fails_every_check_in_about_two_timeouts() {
    let receiver = TestReceiver::start(&[], Reply::Hang).await;
    let policy = Arc::new(TargetPolicy { allow_insecure_loopback: true, allowed_networks: Vec::new() });
    let client = DeliveryClient::new(policy.clone(), &[], Duration::from_secs(1)).expect("client");
    let watch = CertificateWatch::new(policy, &[], Duration::from_secs(1)).expect("watch");
    let target =
        Target { url: receiver.url("/hook"), secret: EndpointSecret::generate(), check_url: None, identity: None };
    let asked = std::time::Instant::now();
    let report = probe::probe(&client, &watch, &target, chrono::Utc::now()).await.expect("a report");
    // The checks run at once: two 1 s timeouts in a row at most (a pair of requests), not
    // one per request (14 s).
    assert!(asked.elapsed() < Duration::from_secs(8), "took {:?}", asked.elapsed());
    let failed = failed(&report);
    assert_eq!(failed.len(), 9, "{report:#?}");
    assert!(
        report.checks.iter().filter(|c| c.outcome == Outcome::Fail).all(|c| c.detail.contains("timeout")),
        "{report:#?}"
    );
}
