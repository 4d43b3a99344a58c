//! Test fixtures: `spawn_app` (the server in-process on 127.0.0.1:0) and `TestReceiver` (a
//! scriptable webhook endpoint, plain or TLS); a real `finhook` process is in `process`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::pki::{requiring_client_certificates, test_pki, test_pki_expiring_in};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use finhook_server::app::App;
use finhook_server::clock::{Clock, ManualClock, SystemClock};
use finhook_server::config::{Redacted, Settings};
use finhook_server::delivery::Worker;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const ADMIN_KEY: &str = "fhk_test_admin_key_0123456789abcdefghijklmnopqrstuv";

/// The secrets key of the shared-store tests (base64 of 32 bytes); every node shares it.
pub const SECRETS_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The longest a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../testdata/flinks/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The sandbox's test user logging in at `institution` (an Authorize body).
pub fn greatday(institution: &str) -> Value {
    json!({ "Institution": institution, "Username": "Greatday", "Password": "Everyday", "Tag": "user=42", "Save": true })
}

/// A fixed start for manual clocks: 2026-03-14 18:00:00 UTC.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_773_511_200, 0).expect("t0")
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Run the background worker on the system clock; otherwise the test drives the worker
    /// step by step on a manual clock.
    pub background_worker: bool,
    pub max_body_bytes: usize,
    pub timeout_seconds: u64,
    pub extra_root_ca: Vec<PathBuf>,
    /// Reuse a database directory (to restart on the same store).
    pub dir: Option<Arc<tempfile::TempDir>>,
    pub clock: Option<ManualClock>,
    pub concurrency: usize,
    pub per_endpoint: usize,
    /// When an attempt in flight counts as slow and gives its slot back.
    pub slow_after_ms: u64,
    /// A `postgres://` URL to use instead of a SQLite file in `dir`.
    pub database: Option<String>,
    /// Callbacks per second and burst per instance (the server's defaults unless set).
    pub ingest_rate: Option<(u32, u32)>,
    /// Bytes of callbacks one instance may store (the server's default unless set).
    pub instance_quota_bytes: Option<u64>,
    /// The instance that also hears every instance's operational events.
    pub operator_events_instance: Option<String>,
    /// Start without `FINHOOK_ADMIN_KEY` (the stored key, or a new one).
    pub no_admin_key: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            background_worker: false,
            max_body_bytes: 32 * 1024 * 1024,
            timeout_seconds: 10,
            extra_root_ca: vec![],
            dir: None,
            clock: None,
            concurrency: 64,
            per_endpoint: 8,
            slow_after_ms: Settings::default().delivery_slow_after_ms,
            database: None,
            ingest_rate: None,
            instance_quota_bytes: None,
            operator_events_instance: None,
            no_admin_key: false,
        }
    }
}

/// The store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// The `postgres://` URL of a shared-store app (a new database per test); `None` on SQLite.
    pub database: Option<String>,
    pub state: finhook_server::app::AppState,
    pub http: reqwest::Client,
    pub worker: Worker,
    pub clock: ManualClock,
    pub dir: Arc<tempfile::TempDir>,
    /// What [`App::pending_at_start`] said.
    pub pending_at_start: u64,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// The app on `backend`: a SQLite file in a temporary directory, or a new database in the
/// PostgreSQL cluster `scripts/test` starts (unless `options.database` names one).
pub async fn spawn_app_on(backend: Backend, mut options: Options) -> TestApp {
    if backend == Backend::Postgres && options.database.is_none() {
        options.database = Some(postgres_database().await);
    }
    spawn_app_with(options).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let dir = options.dir.clone().unwrap_or_else(|| Arc::new(tempfile::tempdir().expect("tempdir")));
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database: options
            .database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("finhook.db").display())),
        allow_insecure_loopback: true,
        max_body_bytes: options.max_body_bytes,
        delivery_timeout_seconds: options.timeout_seconds,
        extra_root_ca: options.extra_root_ca.clone(),
        poll_interval_ms: 50,
        delivery_concurrency: options.concurrency,
        delivery_per_endpoint_concurrency: options.per_endpoint,
        delivery_slow_after_ms: options.slow_after_ms,
        admin_key: (!options.no_admin_key).then(|| Redacted(ADMIN_KEY.to_string())),
        secrets_key: options.database.as_ref().map(|_| Redacted(SECRETS_KEY.to_string())),
        ingest_rate_per_second: options
            .ingest_rate
            .map_or(Settings::default().ingest_rate_per_second, |(rate, _)| rate),
        ingest_burst: options.ingest_rate.map_or(Settings::default().ingest_burst, |(_, burst)| burst),
        instance_quota_bytes: options.instance_quota_bytes.unwrap_or(Settings::default().instance_quota_bytes),
        operator_events_instance: options.operator_events_instance.clone(),
        ..Settings::default()
    };
    let manual = options.clock.clone().unwrap_or_else(|| ManualClock::starting_at(t0()));
    let clock: Arc<dyn Clock> =
        if options.background_worker { Arc::new(SystemClock) } else { Arc::new(manual.clone()) };
    let app = App::build(&settings, clock).await.expect("build app");
    let addr = app.local_addr().expect("addr");
    let worker = app.worker();
    let state = app.state();
    let pending_at_start = app.pending_at_start();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let task =
        if options.background_worker { tokio::spawn(app.run(stopped)) } else { tokio::spawn(app.serve(stopped)) };
    TestApp {
        addr,
        database: options.database.clone(),
        state,
        http: reqwest::Client::new(),
        worker,
        clock: manual,
        dir,
        pending_at_start,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Options that start the app again on the same store (and the same manual clock).
    pub fn restart_options(&self) -> Options {
        Options {
            dir: Some(self.dir.clone()),
            database: self.database.clone(),
            clock: Some(self.clock.clone()),
            ..Options::default()
        }
    }

    /// The URL of this app's database, for tests that read it directly.
    pub fn database_url(&self) -> String {
        self.database.clone().unwrap_or_else(|| format!("sqlite://{}", self.dir.path().join("finhook.db").display()))
    }

    /// Stops the server and waits until it has released the store.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("server ran");
        }
        drop(self.worker);
        drop(self.state);
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let bytes = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(method, path, ADMIN_KEY, body).await
    }

    /// Creates an instance and returns its API key.
    pub async fn create_instance(&self, name: &str) -> String {
        let (status, body) = self.admin(reqwest::Method::POST, "/v1/instances", Some(json!({ "name": name }))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["api_key"].as_str().expect("api_key").to_string()
    }

    /// Creates an endpoint and returns its JSON (with `id` and `secret`).
    pub async fn create_endpoint(&self, instance: &str, body: Value) -> Value {
        let (status, endpoint) =
            self.admin(reqwest::Method::POST, &format!("/v1/instances/{instance}/endpoints"), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{endpoint}");
        endpoint
    }

    pub async fn ingest_raw(&self, instance: &str, body: Vec<u8>, idempotency_key: Option<&str>) -> reqwest::Response {
        let mut request =
            self.http.post(self.url(&format!("/v1/instances/{instance}/callbacks"))).bearer_auth(ADMIN_KEY).body(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        request.send().await.expect("ingest")
    }

    /// Stores `count` bare KYC messages (`{}`, LoginId `login-<n>`) straight through the
    /// store, concurrently so that they share group commits: volume for tests that need it.
    pub async fn store_bare_messages(&self, instance: &str, count: usize) {
        use finhook_server::store::NewMessage;
        let instance = self.state.store.instance_by_name(instance).await.expect("read").expect("instance").id;
        let mut writes = tokio::task::JoinSet::new();
        for n in 0..count {
            let (store, now) = (self.state.store.clone(), self.clock.now());
            writes.spawn(async move {
                let message = NewMessage {
                    instance_id: instance,
                    response_type: finhook_core::flinks::ResponseType::Kyc.into(),
                    login_id: Some(format!("login-{n}")),
                    request_id: None,
                    tag: None,
                    idempotency_key: None,
                    body_sha256: "0".repeat(64),
                    payload: Bytes::from_static(b"{}"),
                    now,
                };
                store.ingest(message).await.expect("ingest");
            });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("an ingest");
        }
    }

    /// Ingests a callback that must be accepted; returns its message id.
    pub async fn ingest(&self, instance: &str, body: Vec<u8>) -> String {
        let response = self.ingest_raw(instance, body, None).await;
        assert_eq!(response.status().as_u16(), 202);
        let body: Value = response.json().await.expect("json");
        body["message_id"].as_str().expect("message_id").to_string()
    }

    pub async fn message(&self, instance: &str, id: &str) -> Value {
        let (status, body) =
            self.admin(reqwest::Method::GET, &format!("/v1/instances/{instance}/messages/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn messages(&self, instance: &str, query: &str) -> Value {
        let (status, body) =
            self.admin(reqwest::Method::GET, &format!("/v1/instances/{instance}/messages{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `GET /healthz`: its status and body.
    pub async fn health(&self) -> (u16, String) {
        let response = self.http.get(self.url("/healthz")).send().await.expect("healthz");
        (response.status().as_u16(), response.text().await.unwrap_or_default())
    }

    /// Runs the worker until no delivery is due at the current (manual) time.
    pub async fn deliver_due(&self) -> usize {
        self.worker.run_due().await.expect("worker round")
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Status(u16),
    /// Never answers; the sender's timeout (or a kill) ends the exchange.
    Hang,
    /// Answers 200 once the test lets it ([`TestReceiver::release`]).
    Held,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct ReceiverState {
    script: Mutex<VecDeque<Reply>>,
    default: Reply,
    received: Mutex<Vec<Received>>,
    arrivals: mpsc::UnboundedSender<()>,
    /// A permit per [`Reply::Held`] request the test has let answer.
    releases: tokio::sync::Semaphore,
}

/// A webhook endpoint on 127.0.0.1 that records every request and answers as scripted.
pub struct TestReceiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    arrivals: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
    server: tokio::task::JoinHandle<()>,
    seen: std::sync::atomic::AtomicUsize,
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = state.script.lock().expect("script").pop_front().unwrap_or(state.default);
    state.received.lock().expect("received").push(Received { path: uri.path().to_string(), headers, body });
    let _ = state.arrivals.send(());
    match reply {
        Reply::Status(code) => (StatusCode::from_u16(code).expect("status"), format!("reply {code}")).into_response(),
        Reply::Hang => std::future::pending().await,
        Reply::Held => {
            state.releases.acquire().await.expect("releases").forget();
            (StatusCode::OK, "reply 200").into_response()
        }
    }
}

fn receiver_parts(script: &[Reply], default: Reply) -> (axum::Router, Arc<ReceiverState>, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let state = Arc::new(ReceiverState {
        script: Mutex::new(script.iter().copied().collect()),
        default,
        received: Mutex::new(Vec::new()),
        arrivals: tx,
        releases: tokio::sync::Semaphore::new(0),
    });
    let router = axum::Router::new().fallback(receive).with_state(state.clone());
    (router, state, rx)
}

impl TestReceiver {
    /// Plain HTTP; answers `script` in order, then `default` forever.
    pub async fn start(script: &[Reply], default: Reply) -> Self {
        let (router, state, rx) = receiver_parts(script, default);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, state, arrivals: tokio::sync::Mutex::new(rx), server, seen: 0.into() }
    }

    /// HTTPS with the given PEM certificate chain and key.
    pub async fn start_tls(cert_pem: &str, key_pem: &str, script: &[Reply], default: Reply) -> Self {
        install_crypto_provider();
        let config =
            axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem.as_bytes().to_vec(), key_pem.as_bytes().to_vec())
                .await
                .expect("tls config");
        Self::start_with_tls(config, script, default).await
    }

    /// HTTPS with this TLS configuration (e.g. one that asks for client certificates).
    pub async fn start_with_tls(
        config: axum_server::tls_rustls::RustlsConfig,
        script: &[Reply],
        default: Reply,
    ) -> Self {
        let (router, state, rx) = receiver_parts(script, default);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum_server::from_tcp_rustls(listener, config).serve(router.into_make_service()).await;
        });
        Self { addr, state, arrivals: tokio::sync::Mutex::new(rx), server, seen: 0.into() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Lets `count` held requests answer.
    pub fn release(&self, count: usize) {
        self.state.releases.add_permits(count);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received").clone()
    }

    /// Waits (at most [`PATIENCE`]) until `count` requests have arrived in total.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let mut arrivals = self.arrivals.lock().await;
        while self.received().len() < count {
            tokio::time::timeout(PATIENCE, arrivals.recv())
                .await
                .unwrap_or_else(|_| panic!("only {} of {count} requests arrived", self.received().len()));
        }
        self.received()
    }
}

pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path
}

/// A request body for [`FinhookProcess::admin`].
pub enum Body {
    Json(Value),
    Raw(Vec<u8>),
    Empty,
}

impl From<()> for Body {
    fn from((): ()) -> Self {
        Body::Empty
    }
}

impl From<Value> for Body {
    fn from(json: Value) -> Self {
        Body::Json(json)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Raw(bytes)
    }
}

pub use crate::process::{FinhookProcess, LISTEN_UI_TOKEN};

/// A new, empty PostgreSQL database for one test, in the cluster `scripts/test` starts (or
/// the one `FINHOOK_TEST_POSTGRES` names).
pub async fn postgres_database() -> String {
    use sqlx::Connection;
    let server = std::env::var("FINHOOK_TEST_POSTGRES").expect(
        "the shared-store tests need PostgreSQL: run scripts/test, or set FINHOOK_TEST_POSTGRES=postgres://...",
    );
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect to FINHOOK_TEST_POSTGRES");
    let name = format!("finhook_test_{}", ulid::Ulid::new().to_string().to_lowercase());
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
    let mut url = url::Url::parse(&server).expect("url");
    url.set_path(&name);
    url.to_string()
}
