//! The receiver snippets of `examples/receivers/` (Python and Node, no dependencies) run
//! against the real thing, so they never rot: `finhook probe` grades each one (every check
//! passes), `finhook serve` delivers a login's callbacks to it out of order and it
//! conciliates them, and a callback signed the Flinks way only (as Flinks sends) is taken
//! while a tampered one is refused.

use std::sync::Arc;
use std::time::Duration;

use finhook_core::secret::EndpointSecret;
use finhook_core::signing;
use finhook_server::delivery::certificate::CertificateWatch;
use finhook_server::delivery::client::DeliveryClient;
use finhook_server::delivery::target::TargetPolicy;
use finhook_server::probe::{self, Outcome, Target};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use crate::helpers::*;

const LOGIN: &str = "c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e";

/// A snippet running on 127.0.0.1, stopped when dropped.
struct Snippet {
    base: String,
    _process: tokio::process::Child,
    _dir: tempfile::TempDir,
}

async fn start(program: &str, file: &str, database: &str, secret: &str) -> Snippet {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = format!("{}/../../examples/receivers/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut process = tokio::process::Command::new(program)
        .arg(&script)
        .args(["--port", "0", "--database"])
        .arg(dir.path().join(database))
        .env("FINHOOK_SECRET", secret)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {program} {script}: {e}"));
    let stdout = process.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{script} did not start"))
        .expect("read")
        .unwrap_or_default();
    let base = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("{script} said {line:?}")).to_string();
    Snippet { base, _process: process, _dir: dir }
}

async fn check_snippet(program: &str, file: &str, database: &str) {
    // The snippets check webhook-timestamp against their real clock, so the sender's must agree.
    let clock = finhook_server::clock::ManualClock::starting_at(chrono::Utc::now());
    let app = spawn_app_with(Options { clock: Some(clock), ..Options::default() }).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": "http://127.0.0.1:9/later", "enabled": false })).await;
    let secret_text = endpoint["secret"].as_str().expect("secret");
    let snippet = start(program, file, database, secret_text).await;
    let secret = EndpointSecret::parse(secret_text).expect("secret");

    // The probe: every check passes (no TLS on loopback to grade).
    let policy = Arc::new(TargetPolicy { allow_insecure_loopback: true, allowed_networks: Vec::new() });
    let client = DeliveryClient::new(policy.clone(), &[], Duration::from_secs(10)).expect("client");
    let watch = CertificateWatch::new(policy, &[], Duration::from_secs(10)).expect("watch");
    let target = Target {
        url: format!("{}/hook", snippet.base),
        secret: secret.clone(),
        check_url: Some(format!("{}/logins/{{login_id}}", snippet.base)),
        identity: None,
    };
    let report = probe::probe(&client, &watch, &target, chrono::Utc::now()).await.expect("report");
    let failed: Vec<_> = report.checks.iter().filter(|c| c.outcome == Outcome::Fail).collect();
    assert!(failed.is_empty() && report.passed, "{file}: {failed:#?}");

    // finhook serve delivers a login's callbacks out of order; the snippet conciliates them.
    let path = format!("/v1/instances/acme/endpoints/{}", endpoint["id"].as_str().expect("id"));
    let url = format!("{}/flinks", snippet.base);
    let (status, _) = app.admin(Method::PATCH, &path, Some(json!({ "url": url, "enabled": true }))).await;
    assert_eq!(status, 200);
    app.ingest("acme", fixture("get_accounts_detail.json")).await;
    app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2);
    let shown = |base: String| async move {
        let response = reqwest::get(format!("{base}/logins/{LOGIN}")).await.expect("get");
        response.json::<Value>().await.expect("json")
    };
    let login = shown(snippet.base.clone()).await;
    assert_eq!(login["kyc"]["Login"]["Id"], LOGIN, "{file}: {login}");
    assert_eq!(login["accounts_detail"]["Login"]["Id"], LOGIN, "{file}: {login}");
    assert_eq!(login["callbacks"].as_array().map(Vec::len), Some(2), "{file}: {login}");

    // As Flinks sends it: no Standard Webhooks headers, only flinks-authenticity-key.
    let body = fixture("kyc.json");
    let flinks_only = |body: Vec<u8>, key: String| {
        let url = format!("{}/flinks", snippet.base);
        async move {
            reqwest::Client::new()
                .post(url)
                .header("flinks-authenticity-key", key)
                .body(body)
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }
    };
    let key = signing::flinks_authenticity_key(&secret, &body);
    assert_eq!(flinks_only(body.clone(), key.clone()).await, 200, "{file}");
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(flinks_only(tampered, key).await, 401, "{file}: a changed body is refused");
    let login = shown(snippet.base.clone()).await;
    assert_eq!(
        login["callbacks"].as_array().map(Vec::len),
        Some(3),
        "{file}: the Flinks-signed one is stored: {login}"
    );
}

#[tokio::test]
async fn the_python_receiver_passes_the_probe_and_conciliates_what_finhook_delivers() {
    check_snippet("python3", "python/receiver.py", "receiver.db").await;
}

#[tokio::test]
async fn the_node_receiver_passes_the_probe_and_conciliates_what_finhook_delivers() {
    check_snippet("node", "node/receiver.js", "receiver.jsonl").await;
}
