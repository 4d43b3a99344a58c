//! The admin client: `finhook instances|endpoints|messages` against a real server.

use serde_json::Value;

use crate::helpers::*;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn finhook(app: &TestApp, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .args(args)
        .args(["--server", &app.url("")])
        .env("FINHOOK_ADMIN_KEY", ADMIN_KEY)
        .output()
        .await
        .expect("run finhook");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn the_admin_client_manages_instances_endpoints_and_messages() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;

    let created = finhook(&app, &["instances", "create", "acme", "--json"]).await;
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let created: Value = serde_json::from_str(&created.stdout).expect("json");
    assert!(created["api_key"].as_str().is_some_and(|k| k.starts_with("fhk_")));
    let listed = finhook(&app, &["instances", "list"]).await;
    assert!(
        listed.stdout.contains("NAME") && listed.stdout.contains("acme") && listed.stdout.contains("live"),
        "{}",
        listed.stdout
    );

    let endpoint = finhook(
        &app,
        &[
            "endpoints",
            "create",
            &receiver.url("/hook"),
            "--instance",
            "acme",
            "--event-type",
            "KYC",
            "--max-attempts",
            "3",
            "--json",
        ],
    )
    .await;
    assert_eq!(endpoint.code, Some(0), "{}", endpoint.stderr);
    let endpoint: Value = serde_json::from_str(&endpoint.stdout).expect("json");
    assert_eq!(endpoint["retry"]["max_attempts"], 3);
    assert_eq!(endpoint["event_types"], serde_json::json!(["KYC"]));
    let id = endpoint["id"].as_str().expect("id");
    let table = finhook(&app, &["endpoints", "list", "--instance", "acme"]).await;
    assert!(table.stdout.contains(id) && table.stdout.contains(&receiver.url("/hook")), "{}", table.stdout);

    let message = app.ingest("acme", fixture("kyc.json")).await;
    app.deliver_due().await;
    let listed = finhook(&app, &["messages", "list", "--instance", "acme", "--response-type", "KYC"]).await;
    assert!(
        listed.stdout.contains(&message) && listed.stdout.contains("c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e"),
        "{}",
        listed.stdout
    );
    assert!(listed.stdout.contains("STATUS") && listed.stdout.contains("pending"), "{}", listed.stdout);
    let by_request = [
        "messages",
        "list",
        "--instance",
        "acme",
        "--request-id",
        "56cd11e7-1deb-4307-af37-ab9622058021",
        "--since",
        "2026-03-14T17:00:00Z",
    ];
    let searched = finhook(&app, &by_request).await;
    assert!(searched.stdout.contains(&message), "{}{}", searched.stdout, searched.stderr);
    let shown = finhook(&app, &["messages", "show", &message, "--instance", "acme"]).await;
    assert!(shown.stdout.contains("pending") && shown.stdout.contains(id), "{}", shown.stdout);
    // What the endpoint answered, without --json: the status, the class and the excerpt.
    for said in ["LAST ANSWER", "500", "http", "reply 500"] {
        assert!(shown.stdout.contains(said), "{said}: {}", shown.stdout);
    }
    let none = finhook(&app, &["messages", "list", "--instance", "acme", "--status", "failed"]).await;
    assert_eq!(none.stdout.trim(), "(none)", "an empty result says so");
    assert!(!shown.stdout.contains("Okonkwo"), "the table view leaves the payload (PII) out");
    let redelivered = finhook(&app, &["messages", "redeliver", &message, "--instance", "acme", "--json"]).await;
    assert_eq!(redelivered.code, Some(0), "{}", redelivered.stderr);
    // A test callback to this endpoint alone, then its deliveries, newest first.
    let tested = finhook(&app, &["endpoints", "test", id, "--instance", "acme", "--json"]).await;
    assert_eq!(tested.code, Some(0), "{}", tested.stderr);
    let tested: Value = serde_json::from_str(&tested.stdout).expect("json");
    let test_message = tested["message_id"].as_str().expect("message_id");
    let deliveries = finhook(&app, &["endpoints", "deliveries", id, "--instance", "acme", "--limit", "1"]).await;
    assert_eq!(deliveries.code, Some(0), "{}", deliveries.stderr);
    for said in ["MESSAGE", "LAST ANSWER", test_message, "pending", "next page", "--cursor"] {
        assert!(deliveries.stdout.contains(said), "{said}: {}", deliveries.stdout);
    }
    let disabled = finhook(&app, &["endpoints", "disable", id, "--instance", "acme", "--json"]).await;
    assert_eq!(serde_json::from_str::<Value>(&disabled.stdout).expect("json")["enabled"], false);

    let ed = finhook(
        &app,
        &["endpoints", "create", &receiver.url("/ed"), "--instance", "acme", "--signing", "ed25519", "--json"],
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&ed.stdout).expect("json")["signing"], "ed25519", "{}", ed.stderr);
    // Ordered delivery, set on create and changed with update (only what is given).
    let ordered = finhook(
        &app,
        &["endpoints", "create", &receiver.url("/ordered"), "--instance", "acme", "--ordering", "login-id", "--json"],
    )
    .await;
    let ordered: Value = serde_json::from_str(&ordered.stdout).expect("json");
    assert_eq!(ordered["ordering"], "login_id", "{ordered}");
    let ordered_id = ordered["id"].as_str().expect("id");
    let args = ["endpoints", "update", ordered_id, "--instance", "acme", "--ordering", "none", "--description", "bank"];
    let updated = finhook(&app, &[&args[..], &["--json"]].concat()).await;
    let updated: Value = serde_json::from_str(&updated.stdout).expect("json");
    assert_eq!((updated["ordering"].as_str(), updated["description"].as_str()), (Some("none"), Some("bank")));
    assert_eq!(updated["url"], ordered["url"], "what was not given is left as it was");
    let nothing = finhook(&app, &["endpoints", "update", ordered_id, "--instance", "acme"]).await;
    assert_eq!(nothing.code, Some(2), "a usage error: {}", nothing.stderr);
    assert!(nothing.stderr.contains("nothing to change"), "{}", nothing.stderr);
    let table = finhook(&app, &["endpoints", "list", "--instance", "acme"]).await;
    assert!(table.stdout.contains("SIGNING") && table.stdout.contains("ed25519"), "{}", table.stdout);
    assert!(table.stdout.contains("ORDER") && table.stdout.contains("none"), "{}", table.stdout);
    for heading in ["OK 1H", "P99 MS 1H", "LAST", "FAILED IN ROW", "BACKLOG"] {
        assert!(table.stdout.contains(heading), "{heading}: {}", table.stdout);
    }
    let bad =
        finhook(&app, &["endpoints", "create", &receiver.url("/x"), "--instance", "acme", "--signing", "rsa"]).await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);

    let refused = finhook(&app, &["endpoints", "create", "http://hooks.example.com/", "--instance", "acme"]).await;
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("422") && refused.stderr.contains("$.url"), "{}", refused.stderr);
    let usage = finhook(&app, &["messages", "list"]).await;
    assert_eq!(usage.code, Some(2));
    assert!(usage.stderr.contains("--instance"), "{}", usage.stderr);
    let audit = finhook(&app, &["audit", "list"]).await;
    assert_eq!(audit.code, Some(0), "{}", audit.stderr);
    assert!(audit.stdout.contains("ACTION") && audit.stdout.contains("endpoint.create"), "{}", audit.stdout);
    let rotate = finhook(&app, &["admin-key", "rotate"]).await;
    assert_eq!(rotate.code, Some(1), "{}", rotate.stderr);
    assert!(rotate.stderr.contains("409") && rotate.stderr.contains("FINHOOK_ADMIN_KEY"), "{}", rotate.stderr);
    let unknown = finhook(&app, &["instances", "show", "nobody"]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(unknown.stderr.contains("404"), "{}", unknown.stderr);
}

/// `finhook ledger export` downloads the chain; `finhook ledger verify` accepts it whole,
/// checks the head written down, and names the first broken link of a tampered copy.
#[tokio::test]
async fn the_ledger_is_exported_and_verified_from_the_command_line() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", serde_json::json!({ "url": receiver.url("/") })).await;
    for _ in 0..3 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    app.deliver_due().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("acme.jsonl");
    let file = file.to_str().expect("utf-8 path");

    let exported = finhook(&app, &["ledger", "export", "--instance", "acme", "--output", file]).await;
    assert_eq!(exported.code, Some(0), "{}", exported.stderr);
    assert!(exported.stderr.contains("ends at seq 3, head "), "{}", exported.stderr);
    let head = exported.stderr.trim().rsplit(' ').next().expect("head").to_string();
    let verified = finhook(&app, &["ledger", "verify", file, "--head", &head]).await;
    assert_eq!(verified.code, Some(0), "{}", verified.stderr);
    assert!(
        verified.stdout.starts_with("ok: 3 entries of instance acme, seq 1 to 3, from the genesis; head "),
        "{}",
        verified.stdout
    );
    let json = finhook(&app, &["ledger", "verify", file, "--json"]).await;
    let json: Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(
        (json["ok"].as_bool(), json["entries"].as_u64(), json["head"].as_str()),
        (Some(true), Some(3), Some(head.as_str()))
    );

    let other_head = finhook(&app, &["ledger", "verify", file, "--head", &"0".repeat(64)]).await;
    assert_eq!(other_head.code, Some(1));
    assert!(other_head.stderr.contains("not at the expected head"), "{}", other_head.stderr);

    let lines: Vec<String> = std::fs::read_to_string(file).expect("read").lines().map(str::to_string).collect();
    let tampered = dir.path().join("tampered.jsonl");
    let first_failed = lines[0].replace("\"status\":500", "\"status\":200");
    assert_ne!(first_failed, lines[0], "the first attempt was answered 500");
    std::fs::write(&tampered, format!("{first_failed}\n{}\n{}\n", lines[1], lines[2])).expect("write");
    let caught = finhook(&app, &["ledger", "verify", tampered.to_str().expect("path")]).await;
    assert_eq!(caught.code, Some(1));
    assert!(
        caught.stderr.contains("is broken at line 1 (seq 1): the hash does not match the entry's contents"),
        "{}",
        caught.stderr
    );
    let reordered = dir.path().join("reordered.jsonl");
    std::fs::write(&reordered, format!("{}\n{}\n{}\n", lines[0], lines[2], lines[1])).expect("write");
    let caught = finhook(&app, &["ledger", "verify", reordered.to_str().expect("path"), "--json"]).await;
    assert_eq!(caught.code, Some(1));
    let caught: Value = serde_json::from_str(&caught.stdout).expect("json");
    assert_eq!(
        (caught["ok"].as_bool(), caught["line"].as_u64(), caught["seq"].as_u64()),
        (Some(false), Some(2), Some(3))
    );

    // A second implementation of the definition, in Python's standard library, agrees.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/verify_ledger.py");
    let python = |file: &str| {
        std::process::Command::new("python3").args([script, file, "--head", &head]).output().expect("python3")
    };
    let whole = python(file);
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    assert!(String::from_utf8_lossy(&whole.stdout).starts_with("ok: 3 entries, seq 1 to 3"));
    let broken = python(tampered.to_str().expect("path"));
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("line 1: the hash does not match"));

    let missing = finhook(&app, &["ledger", "verify", "/nonexistent/ledger.jsonl"]).await;
    assert_eq!(missing.code, Some(2));
    assert!(missing.stderr.contains("cannot read /nonexistent/ledger.jsonl"), "{}", missing.stderr);
}

/// `finhook endpoints create` against a server whose certificate is not valid: refused with
/// the reason and what to do; `--no-verify` stores it, its report saying what is wrong.
#[tokio::test]
async fn an_endpoint_with_a_certificate_that_is_not_valid_needs_no_verify() {
    let app = spawn_app().await;
    let self_signed = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let receiver = TestReceiver::start_tls(
        &self_signed.cert.pem(),
        &self_signed.key_pair.serialize_pem(),
        &[],
        Reply::Status(200),
    )
    .await;
    app.create_instance("acme").await;
    let url = format!("https://localhost:{}/hook", receiver.addr.port());
    let refused = finhook(&app, &["endpoints", "create", &url, "--instance", "acme"]).await;
    assert_eq!(refused.code, Some(1), "{}", refused.stdout);
    assert!(
        refused.stderr.contains("422")
            && refused.stderr.contains("unknown issuer")
            && refused.stderr.contains("(at $.url)"),
        "{}",
        refused.stderr
    );
    let stored = finhook(&app, &["endpoints", "create", &url, "--instance", "acme", "--no-verify", "--json"]).await;
    assert_eq!(stored.code, Some(0), "{}", stored.stderr);
    let stored: Value = serde_json::from_str(&stored.stdout).expect("json");
    assert_eq!(stored["certificate"]["chain_valid"], false, "{stored}");
}

/// A `--server` without its scheme, and a server that is not there, are said plainly.
#[tokio::test]
async fn a_bad_server_url_and_a_server_not_there_are_said_plainly() {
    let run = |server: String| async move {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
            .args(["instances", "list", "--server", &server])
            .env("FINHOOK_ADMIN_KEY", ADMIN_KEY)
            .output()
            .await
            .expect("run finhook");
        (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let (code, stderr) = run("127.0.0.1:7790".into()).await;
    assert_eq!(code, Some(2), "a usage error");
    assert!(
        stderr.contains("--server must be the server's URL with its scheme, such as http://127.0.0.1:7700"),
        "{stderr}"
    );
    assert!(!stderr.contains("builder error"), "{stderr}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("addr").port();
    let (code, stderr) = run(format!("http://127.0.0.1:{closed}")).await;
    assert_eq!(code, Some(1));
    assert!(stderr.to_lowercase().contains("connection refused"), "{stderr}");
}

/// `--log-format json` writes one JSON object per line, and a line written while a
/// request is handled carries that request's id (the caller's `x-request-id`, echoed).
#[tokio::test]
async fn json_logs_carry_the_request_id() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--database"])
        .arg(format!("sqlite://{}", dir.path().join("finhook.db").display()))
        .env("FINHOOK_ADMIN_KEY", ADMIN_KEY)
        .env("FINHOOK_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn finhook");
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(PATIENCE, async {
        loop {
            let line = stdout.next_line().await.expect("stdout").expect("a ready line");
            if let Some(addr) = line.strip_prefix("finhook listening on http://") {
                return addr.to_string();
            }
        }
    })
    .await
    .expect("finhook started");
    let http = reqwest::Client::new();
    let created = http
        .post(format!("http://{addr}/v1/instances"))
        .bearer_auth(ADMIN_KEY)
        .json(&serde_json::json!({ "name": "acme" }))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let rotated = http
        .post(format!("http://{addr}/v1/instances/acme/rotate-key"))
        .bearer_auth(ADMIN_KEY)
        .header("x-request-id", "req-7f3a")
        .send()
        .await
        .expect("rotate");
    assert_eq!(rotated.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-7f3a"));
    let logged = tokio::time::timeout(PATIENCE, async {
        loop {
            let line = stderr.next_line().await.expect("stderr").expect("a log line");
            let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if value["fields"]["message"] == "instance API key rotated" {
                return value;
            }
        }
    })
    .await
    .expect("the rotation was logged");
    assert_eq!(logged["span"]["id"], "req-7f3a", "{logged}");
    assert_eq!((logged["span"]["method"].as_str(), logged["level"].as_str()), (Some("POST"), Some("INFO")), "{logged}");
    child.kill().await.expect("stop finhook");
}

/// `finhook messages recover --since 1h` starts a recovery job and follows it to its end.
#[tokio::test]
async fn messages_recover_resends_the_failed_deliveries_of_a_range() {
    // The app's clock starts at the real now, so that `--since 1h` (counted from the CLI's
    // clock) covers what just failed.
    let options = Options {
        clock: Some(finhook_server::clock::ManualClock::starting_at(chrono::Utc::now())),
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", serde_json::json!({ "url": receiver.url("/"), "retry": { "max_attempts": 1 } })).await;
    app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let run = finhook(&app, &["messages", "recover", "--instance", "acme", "--since", "1h", "--json"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let job: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        (job["status"].as_str(), job["total"].as_u64(), job["resent"].as_u64()),
        (Some("done"), Some(1), Some(1)),
        "{job}"
    );
    assert_eq!(app.deliver_due().await, 1);
    let bad = finhook(&app, &["messages", "recover", "--instance", "acme", "--since", "an hour"]).await;
    assert_eq!(bad.code, Some(1), "{}", bad.stderr);
    assert!(bad.stderr.contains("--since must be an RFC 3339 time or how long ago"), "{}", bad.stderr);
}

/// `finhook serve --tls-cert --tls-key` speaks HTTPS (and only HTTPS) with its own
/// certificate, and the dashboard's session cookie is then `Secure`.
#[tokio::test]
async fn finhook_serve_speaks_https_and_its_session_cookie_is_secure() {
    install_crypto_provider();
    let pki = crate::pki::test_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = write_file(dir.path(), "server.pem", &pki.leaf_pem);
    let key = write_file(dir.path(), "server.key", &pki.leaf_key_pem);
    let args: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
        "--database".into(),
        format!("sqlite://{}", dir.path().join("finhook.db").display()),
    ];
    let server = FinhookProcess::start(dir.path(), &args, "finhook listening on https://").await;
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("ca");
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let base = format!("https://localhost:{}", server.addr.port());
    let health = https.get(format!("{base}/healthz")).send().await.expect("https");
    assert_eq!(health.status().as_u16(), 200);
    assert!(reqwest::get(format!("http://{}/healthz", server.addr)).await.is_err(), "no plain HTTP on that port");
    let signed_in =
        https.post(format!("{base}/dashboard/login")).form(&[("key", ADMIN_KEY)]).send().await.expect("sign in");
    let cookie = signed_in.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(
        cookie.contains("finhook_session=") && cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    server.kill().await;
}
