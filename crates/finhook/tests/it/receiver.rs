//! The receiver kit: verification, deduplication, durable storage, conciliation,
//! forwarding, and `finhook serve` delivering to `finhook listen`.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use finhook_core::secret::EndpointSecret;
use finhook_core::signing;
use finhook_receiver::{Receipt, Receiver, ReceiverSecret, ReceiverStore, Verdict, Verifier};
use serde_json::{json, Value};

use crate::helpers::*;

const LOGIN: &str = "c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e";

/// The receiver library mounted on 127.0.0.1:0, with its receipts captured.
struct TestListener {
    base: String,
    store: ReceiverStore,
    receipts: Arc<Mutex<Vec<Receipt>>>,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestListener {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn spawn_listener(secret: &EndpointSecret, forward_to: Option<String>) -> TestListener {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ReceiverStore::open(&format!("sqlite://{}", dir.path().join("r.db").display())).await.expect("store");
    let receipts = Arc::new(Mutex::new(Vec::new()));
    let sink = receipts.clone();
    let mut receiver = Receiver::new(store.clone(), Verifier::new(vec![ReceiverSecret::new(secret.expose())]))
        .pages(finhook_receiver::Pages::Open)
        .max_body_bytes(64 * 1024)
        .on_receipt(move |r| sink.lock().expect("receipts").push(r.clone()));
    if let Some(url) = forward_to {
        receiver = receiver.forward_to(
            finhook_receiver::forward::Forwarder::new(url, std::time::Duration::from_secs(5)).expect("fwd"),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, finhook_receiver::router(receiver)).await;
    });
    TestListener { base, store, receipts, _dir: dir, server }
}

/// POSTs `body` signed the Flinks way only (as real Flinks does).
async fn post_flinks(base: &str, secret: &EndpointSecret, body: &[u8]) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/flinks/webhook"))
        .header("flinks-authenticity-key", signing::flinks_authenticity_key(secret, body))
        .body(body.to_vec())
        .send()
        .await
        .expect("post")
}

/// POSTs `body` signed as finhook sends it: both schemes, with a webhook-id.
async fn post_finhook(base: &str, secret: &EndpointSecret, id: &str, timestamp: i64, body: &[u8]) -> reqwest::Response {
    let signed = signing::sign(std::slice::from_ref(secret), id, timestamp, body).expect("sign");
    reqwest::Client::new()
        .post(format!("{base}/"))
        .header("flinks-authenticity-key", signed.flinks_authenticity_key)
        .header("webhook-id", signed.webhook_id)
        .header("webhook-timestamp", signed.webhook_timestamp.to_string())
        .header("webhook-signature", signed.webhook_signature)
        .body(body.to_vec())
        .send()
        .await
        .expect("post")
}

/// GETs a receiver page, with the token `finhook listen --ui` takes in the tests.
async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::Client::new().get(url).bearer_auth(LISTEN_UI_TOKEN).send().await.expect("get");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn callbacks_conciliate_in_any_order_and_duplicates_are_stored_once() {
    let secret = EndpointSecret::generate();
    let listener = spawn_listener(&secret, None).await;
    // GetAccountsDetail first, then KYC: the reverse of Flinks' usual order.
    assert_eq!(post_flinks(&listener.base, &secret, &fixture("get_accounts_detail.json")).await.status(), 200);
    assert_eq!(post_flinks(&listener.base, &secret, &fixture("kyc.json")).await.status(), 200);
    // Flinks retries: the same LoginId + ResponseType + RequestId is a duplicate.
    assert_eq!(post_flinks(&listener.base, &secret, &fixture("kyc.json")).await.status(), 200);
    // finhook retries: the same webhook-id is a duplicate, whatever the timestamp.
    let now = Utc::now().timestamp();
    let investments = fixture("investments.json");
    assert_eq!(post_finhook(&listener.base, &secret, "msg_A", now, &investments).await.status(), 200);
    assert_eq!(post_finhook(&listener.base, &secret, "msg_A", now + 1, &investments).await.status(), 200);
    assert_eq!(listener.store.count().await.expect("count"), 3);

    let (status, login) = get_json(&format!("{}/logins/{LOGIN}", listener.base)).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["login_id"], LOGIN);
    assert_eq!(login["tag"], "applicant=APP-20931");
    assert_eq!(login["kyc"]["Holders"][0]["Name"], "Marguerite Okonkwo-Lavoie");
    assert_eq!(login["accounts_detail"]["Accounts"].as_array().expect("accounts").len(), 2);
    assert_eq!(
        login["accounts_detail"]["Accounts"][0]["Balance"]["Current"].to_string(),
        "2384.17",
        "money exactly as sent"
    );
    let types: Vec<&str> =
        login["callbacks"].as_array().expect("c").iter().map(|c| c["response_type"].as_str().expect("t")).collect();
    assert_eq!(types, ["GetAccountsDetail", "KYC"]);
    // The Investments fixture belongs to another login.
    let (_, logins) = get_json(&format!("{}/logins", listener.base)).await;
    assert_eq!(logins.as_array().expect("logins").len(), 2);

    let verdicts: Vec<Verdict> = listener.receipts.lock().expect("r").iter().map(|r| r.verdict.clone()).collect();
    assert_eq!(
        verdicts,
        [Verdict::Accepted, Verdict::Accepted, Verdict::Duplicate, Verdict::Accepted, Verdict::Duplicate]
    );
    let page = reqwest::get(format!("{}/view/{LOGIN}", listener.base)).await.expect("html").text().await.expect("text");
    assert!(page.contains("Marguerite Okonkwo-Lavoie") && page.contains("Compte cheques quotidien"), "{page}");
}

#[tokio::test]
async fn a_refresh_replaces_older_data_and_keeps_the_history() {
    let secret = EndpointSecret::generate();
    let listener = spawn_listener(&secret, None).await;
    let mut old: Value = serde_json::from_slice(&fixture("get_accounts_detail.json")).expect("json");
    old["RequestId"] = json!("11111111-1111-1111-1111-111111111111");
    old["Accounts"][0]["Title"] = json!("Before refresh");
    let old = serde_json::to_vec(&old).expect("bytes");
    assert_eq!(post_flinks(&listener.base, &secret, &old).await.status(), 200);
    assert_eq!(post_flinks(&listener.base, &secret, &fixture("get_accounts_detail.json")).await.status(), 200);
    let (_, login) = get_json(&format!("{}/logins/{LOGIN}", listener.base)).await;
    assert_eq!(login["accounts_detail"]["Accounts"][0]["Title"], "Compte cheques quotidien");
    assert_eq!(login["request_id"], "56cd11e7-1deb-4307-af37-ab9622058021");
    assert_eq!(login["callbacks"].as_array().expect("c").len(), 2, "history kept");
}

#[tokio::test]
async fn bad_signatures_and_bad_bodies_are_refused_and_nothing_is_stored() {
    let secret = EndpointSecret::generate();
    let listener = spawn_listener(&secret, None).await;
    let body = fixture("kyc.json");
    let client = reqwest::Client::new();
    let url = format!("{}/hook", listener.base);

    let unsigned = client.post(&url).body(body.clone()).send().await.expect("post");
    assert_eq!(unsigned.status(), 401);
    let wrong = post_flinks(&listener.base, &EndpointSecret::generate(), &body).await;
    assert_eq!(wrong.status(), 401);
    let stale = post_finhook(&listener.base, &secret, "msg_S", Utc::now().timestamp() - 301, &body).await;
    assert_eq!(stale.status(), 401);
    let future = post_finhook(&listener.base, &secret, "msg_F", Utc::now().timestamp() + 301, &body).await;
    assert_eq!(future.status(), 401);
    let mut tampered = body.clone();
    tampered[20] ^= 1;
    let signed_for_original = signing::flinks_authenticity_key(&secret, &body);
    let response = client
        .post(&url)
        .header("flinks-authenticity-key", signed_for_original)
        .body(tampered)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);

    for not_a_callback in [&b"hello"[..], b"[]", b"{\"ResponseType\":\"KYC\"}", b"{\"ResponseType\":\"Nope\"}"] {
        let response = post_flinks(&listener.base, &secret, not_a_callback).await;
        assert_eq!(response.status(), 400, "{}", String::from_utf8_lossy(not_a_callback));
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    let big = format!("{{\"ResponseType\":\"KYC\",\"Login\":{{\"Id\":\"x\"}},\"pad\":\"{}\"}}", "a".repeat(70 * 1024));
    assert_eq!(post_flinks(&listener.base, &secret, big.as_bytes()).await.status(), 413);
    assert_eq!(listener.store.count().await.expect("count"), 0);
    let (status, _) = get_json(&format!("{}/logins/{LOGIN}", listener.base)).await;
    assert_eq!(status, 404);
    assert!(listener
        .receipts
        .lock()
        .expect("r")
        .iter()
        .all(|r| matches!(r.verdict, Verdict::Rejected { status, .. } if status < 500)));
}

#[tokio::test]
async fn a_failing_app_behind_forward_to_makes_the_sender_retry() {
    let secret = EndpointSecret::generate();
    let app = TestReceiver::start(&[Reply::Status(500)], Reply::Status(204)).await;
    let listener = spawn_listener(&secret, Some(app.url("/app/webhooks"))).await;
    let body = fixture("kyc.json");
    let now = Utc::now().timestamp();
    let first = post_finhook(&listener.base, &secret, "msg_X", now, &body).await;
    assert_eq!(first.status(), 502, "the app failed, so the sender must retry");
    let again = post_finhook(&listener.base, &secret, "msg_X", now + 30, &body).await;
    assert_eq!(again.status(), 200);
    let third = post_finhook(&listener.base, &secret, "msg_X", now + 60, &body).await;
    assert_eq!(third.status(), 200);
    let relayed = app.received();
    assert_eq!(relayed.len(), 2, "forwarded until the app took it, then never again");
    assert_eq!(relayed[1].path, "/app/webhooks");
    assert_eq!(relayed[1].body.as_ref(), body.as_slice());
    assert_eq!(relayed[1].header("webhook-id"), Some("msg_X"));
    assert!(relayed[1].header("flinks-authenticity-key").is_some());
    assert_eq!(listener.store.count().await.expect("count"), 1);
}

#[tokio::test]
async fn a_callback_acknowledged_before_a_kill_is_there_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = EndpointSecret::generate();
    let flags = vec!["--secret".to_string(), secret.expose().to_string()];
    let listen = FinhookProcess::listen(dir.path(), &flags).await;
    let response = post_flinks(&format!("http://{}", listen.addr), &secret, &fixture("kyc.json")).await;
    assert_eq!(response.status(), 200);
    let line = listen.next_line().await;
    for part in ["KYC", LOGIN, "Tag applicant=APP-20931", "accepted"] {
        assert!(line.contains(part), "one readable line per callback: {line}");
    }
    listen.kill().await;

    let listen = FinhookProcess::listen(dir.path(), &flags).await;
    let (status, login) = get_json(&listen.url(&format!("/logins/{LOGIN}"))).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["kyc"]["Login"]["Id"], LOGIN);
    listen.kill().await;
}

/// The conciliation of [`LOGIN`] at `finhook listen` once both of its callbacks have
/// landed (they follow the ingests within milliseconds; checked every 25 ms for 10 s).
async fn login_with_two_callbacks(listen: &FinhookProcess) -> Value {
    for _ in 0..400 {
        let (status, body) = get_json(&listen.url(&format!("/logins/{LOGIN}"))).await;
        if status == 200 && body["callbacks"].as_array().is_some_and(|c| c.len() == 2) {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Value::Null
}

#[tokio::test]
async fn finhook_serve_delivers_to_finhook_listen_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = FinhookProcess::serve(dir.path()).await;
    let api = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = api.request(method, serve.url(path)).bearer_auth(ADMIN_KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    call(reqwest::Method::POST, "/v1/instances", Some(json!({ "name": "acme" }))).await.expect("instance");
    // The endpoint exists before the receiver, so that its secret can be handed to `finhook listen`.
    let endpoint: Value = call(
        reqwest::Method::POST,
        "/v1/instances/acme/endpoints",
        Some(json!({ "url": "http://127.0.0.1:9/pending", "enabled": false })),
    )
    .await
    .expect("endpoint")
    .json()
    .await
    .expect("json");
    let secret = endpoint["secret"].as_str().expect("secret").to_string();
    let listen = FinhookProcess::listen(dir.path(), &["--secret".to_string(), secret]).await;
    let path = format!("/v1/instances/acme/endpoints/{}", endpoint["id"].as_str().expect("id"));
    let patched = call(reqwest::Method::PATCH, &path, Some(json!({ "url": listen.url("/flinks"), "enabled": true })))
        .await
        .expect("patch");
    assert_eq!(patched.status().as_u16(), 200);

    for name in ["get_accounts_detail.json", "kyc.json"] {
        let accepted = api
            .post(serve.url("/v1/instances/acme/callbacks"))
            .bearer_auth(ADMIN_KEY)
            .body(fixture(name))
            .send()
            .await
            .expect("ingest");
        assert_eq!(accepted.status().as_u16(), 202);
    }
    let login = login_with_two_callbacks(&listen).await;
    assert_eq!(login["kyc"]["Holders"][0]["Address"]["City"], "Sherbrooke", "{login}");
    assert_eq!(login["accounts_detail"]["RequestId"], "56cd11e7-1deb-4307-af37-ab9622058021");
    assert!(login["callbacks"]
        .as_array()
        .expect("c")
        .iter()
        .all(|c| c["webhook_id"].as_str().is_some_and(|id| id.starts_with("msg_"))));
    serve.kill().await;
    listen.kill().await;
}

/// `finhook listen --jwks-url` verifies Ed25519 (`v1a`) webhooks with nothing but the
/// sender's public JWK set, which it fetches itself: no secret is shared.
#[tokio::test]
async fn finhook_listen_verifies_ed25519_webhooks_with_the_public_jwk_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let serve = FinhookProcess::serve(dir.path()).await;
    let api = reqwest::Client::new();
    let admin = |request: reqwest::RequestBuilder| request.bearer_auth(ADMIN_KEY).send();
    admin(api.post(serve.url("/v1/instances")).json(&json!({ "name": "acme" }))).await.expect("instance");
    let jwks = serve.url("/v1/instances/acme/.well-known/jwks.json");
    let listen = FinhookProcess::listen(dir.path(), &["--jwks-url".to_string(), jwks]).await;
    let created = admin(
        api.post(serve.url("/v1/instances/acme/endpoints"))
            .json(&json!({ "url": listen.url("/flinks"), "signing": "ed25519" })),
    )
    .await
    .expect("endpoint");
    assert_eq!(created.status().as_u16(), 201);
    for name in ["get_accounts_detail.json", "kyc.json"] {
        let accepted =
            admin(api.post(serve.url("/v1/instances/acme/callbacks")).body(fixture(name))).await.expect("ingest");
        assert_eq!(accepted.status().as_u16(), 202);
    }
    let login = login_with_two_callbacks(&listen).await;
    assert_eq!(login["kyc"]["Holders"][0]["Address"]["City"], "Sherbrooke", "{login}");
    serve.kill().await;
    listen.kill().await;

    // A key that is not one is refused before anything starts.
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .args(["listen", "--listen", "127.0.0.1:0", "--public-key", "whpk_AAAA"])
        .output()
        .await
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--public-key whpk_AAAA") && stderr.contains("32 bytes"), "{stderr}");
}

#[tokio::test]
async fn finhook_listen_serves_tls_and_finhook_serve_verifies_it() {
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = write_file(dir.path(), "leaf.pem", &pki.leaf_pem);
    let key = write_file(dir.path(), "leaf.key", &pki.leaf_key_pem);
    let ca = write_file(dir.path(), "ca.pem", &pki.ca_pem);
    // The receiver checks webhook-timestamp against its real clock, so the sender's must agree.
    let clock = finhook_server::clock::ManualClock::starting_at(Utc::now());
    let app = spawn_app_with(Options { extra_root_ca: vec![ca], clock: Some(clock), ..Options::default() }).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": "https://localhost:9/pending", "enabled": false })).await;
    let mut args: Vec<String> = ["listen", "--listen", "127.0.0.1:0", "--database"].map(String::from).to_vec();
    args.push(format!("sqlite://{}", dir.path().join("receiver.db").display()));
    for (flag, value) in [
        ("--secret", endpoint["secret"].as_str().expect("s").to_string()),
        ("--tls-cert", cert.display().to_string()),
        ("--tls-key", key.display().to_string()),
    ] {
        args.push(flag.to_string());
        args.push(value);
    }
    let listen = FinhookProcess::start(dir.path(), &args, "finhook listen on https://").await;
    let path = format!("/v1/instances/acme/endpoints/{}", endpoint["id"].as_str().expect("id"));
    let url = format!("https://localhost:{}/hooks", listen.addr.port());
    let (status, _) = app.admin(reqwest::Method::PATCH, &path, Some(json!({ "url": url, "enabled": true }))).await;
    assert_eq!(status, 200);
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let message = app.message("acme", &id).await;
    assert_eq!(message["deliveries"][0]["status"], "delivered", "{message}");
    listen.kill().await;
}

#[tokio::test]
async fn finhooks_operational_events_are_verified_stored_once_and_kept_apart_from_the_logins() {
    // The receiver checks `webhook-timestamp` against its own clock: the app's starts now.
    let clock = finhook_server::clock::ManualClock::starting_at(Utc::now());
    let app = spawn_app_with(Options { clock: Some(clock), ..Options::default() }).await;
    app.create_instance("acme").await;
    let down = TestReceiver::start(&[], Reply::Status(500)).await;
    app.create_endpoint("acme", json!({ "url": down.url("/") })).await;
    let watcher =
        app.create_endpoint("acme", json!({ "url": "http://127.0.0.1:9/", "event_types": ["endpoint.failing"] })).await;
    let secret = EndpointSecret::parse(watcher["secret"].as_str().expect("secret")).expect("secret");
    let listener = spawn_listener(&secret, None).await;
    let path = format!("/v1/instances/acme/endpoints/{}", watcher["id"].as_str().expect("id"));
    let (status, _) = app.admin(reqwest::Method::PATCH, &path, Some(json!({ "url": listener.base }))).await;
    assert_eq!(status, 200);
    for _ in 0..5 {
        app.ingest("acme", fixture("kyc.json")).await;
    }
    assert_eq!(app.deliver_due().await, 5);
    assert_eq!(app.state.events.pass().await.expect("events").published, 1);
    assert_eq!(app.deliver_due().await, 1);

    let (status, events) = get_json(&format!("{}/events", listener.base)).await;
    assert_eq!(status, 200, "{events}");
    let events = events.as_array().expect("events").clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"]["type"], "endpoint.failing");
    assert_eq!(events[0]["event"]["data"]["failed_attempts_in_row"], 5);
    let message_id = events[0]["webhook_id"].as_str().expect("webhook-id").to_string();
    let (_, logins) = get_json(&format!("{}/logins", listener.base)).await;
    assert_eq!(logins, json!([]), "events are not callbacks of a login");

    // Sent again (a retry, a redelivery): stored once.
    let redeliver = format!("/v1/instances/acme/messages/{message_id}/redeliver");
    let (status, _) = app.admin(reqwest::Method::POST, &redeliver, None).await;
    assert_eq!(status, 202);
    assert_eq!(app.deliver_due().await, 1);
    let (_, again) = get_json(&format!("{}/events", listener.base)).await;
    assert_eq!(again.as_array().expect("events").len(), 1);
    let receipts = listener.receipts.lock().expect("r").clone();
    let seen: Vec<(Option<&str>, Verdict)> =
        receipts.iter().map(|r| (r.event.map(|e| e.as_str()), r.verdict.clone())).collect();
    assert_eq!(seen, [(Some("endpoint.failing"), Verdict::Accepted), (Some("endpoint.failing"), Verdict::Duplicate)]);
    assert!(receipts[0].to_string().contains("endpoint.failing"), "{}", receipts[0]);
}

#[tokio::test]
async fn finhook_listen_registers_its_own_endpoint_and_deletes_it_when_stopped() {
    // The receiver checks webhook-timestamp against its real clock, so the sender's must agree.
    let clock = finhook_server::clock::ManualClock::starting_at(Utc::now());
    let app = spawn_app_with(Options { clock: Some(clock), ..Options::default() }).await;
    app.create_instance("acme").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = ["--server".to_string(), app.url(""), "--instance".to_string(), "acme".to_string()];
    let mut listen = FinhookProcess::listen(dir.path(), &extra).await;
    let (_, endpoints) = app.admin(reqwest::Method::GET, "/v1/instances/acme/endpoints", None).await;
    let registered = &endpoints["data"][0];
    assert_eq!(registered["url"], format!("http://{}/", listen.addr), "{endpoints}");
    assert_eq!(registered["description"], "finhook listen");
    // The secret it printed verifies what finhook serve delivers.
    let id = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(app.message("acme", &id).await["deliveries"][0]["status"], "delivered");

    let pid = listen.child.id().expect("pid").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = tokio::time::timeout(PATIENCE, listen.child.wait()).await.expect("exits").expect("wait");
    assert!(status.success(), "{status:?}");
    let (_, endpoints) = app.admin(reqwest::Method::GET, "/v1/instances/acme/endpoints", None).await;
    assert_eq!(endpoints["data"], json!([]), "its endpoint is gone with it");

    // An API key where the secret goes is refused before anything starts.
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .args(["listen", "--listen", "127.0.0.1:0", "--secret", "fhk_0123456789abcdef"])
        .env_remove("FINHOOK_ADMIN_KEY")
        .output()
        .await
        .expect("run");
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("API key (fhk_...)") && said.contains("whsec_"), "{said}");
}

#[tokio::test]
async fn finhook_listens_pages_are_off_unless_asked_and_then_behind_its_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = EndpointSecret::generate().expose().to_string();
    let mut args: Vec<String> = ["listen", "--listen", "127.0.0.1:0", "--database"].map(String::from).to_vec();
    args.push(format!("sqlite://{}", dir.path().join("off.db").display()));
    args.extend(["--secret".to_string(), secret.clone()]);
    let off = FinhookProcess::start(dir.path(), &args, "finhook listen on http://").await;
    let response = reqwest::get(off.url("/logins")).await.expect("get");
    assert_eq!(response.status().as_u16(), 404);
    assert!(response.text().await.expect("text").contains("--ui"));
    off.kill().await;

    let on = FinhookProcess::listen(dir.path(), &["--secret".to_string(), secret]).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for path in ["/", "/logins", "/events", &format!("/logins/{LOGIN}"), &format!("/view/{LOGIN}")] {
        let status = http.get(on.url(path)).send().await.expect("get").status().as_u16();
        assert_eq!(status, 401, "{path} without the token");
        let wrong = http.get(on.url(path)).bearer_auth("listen-ui-token-for-testz").send().await.expect("get");
        assert_eq!(wrong.status().as_u16(), 401, "{path} with a wrong token");
    }
    let bearer = http.get(on.url("/logins")).bearer_auth(LISTEN_UI_TOKEN).send().await.expect("get");
    assert_eq!(bearer.status().as_u16(), 200);
    let query = http.get(on.url(&format!("/logins?token={LISTEN_UI_TOKEN}"))).send().await.expect("get");
    assert_eq!(query.status().as_u16(), 200);
    // The link it prints opens the pages in a browser: a cookie, then no token in the links.
    let opened = http.get(on.url(&format!("/ui?token={LISTEN_UI_TOKEN}"))).send().await.expect("get");
    assert_eq!(opened.status().as_u16(), 303);
    let cookie = opened.headers()["set-cookie"].to_str().expect("cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().expect("name=value").to_string();
    let page = http.get(on.url("/")).header("cookie", pair).send().await.expect("get");
    assert_eq!(page.status().as_u16(), 200);
    on.kill().await;
}
