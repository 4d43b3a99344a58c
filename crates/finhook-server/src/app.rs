//! Start-up and wiring: open the store, settle the admin key, build the delivery client,
//! bind the listener, then serve the API and run the worker until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::delivery::handoff::Dispatch;
use finhook_core::flinks::ParseLimits;
use finhook_core::secret::{ApiKey, KeyHash};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use axum::Router;

use crate::clock::Clock;
use crate::config::Settings;
use crate::delivery::client::{ClientError, DeliveryClient};
use crate::delivery::target::TargetPolicy;
use crate::delivery::{Worker, WorkerContext, WorkerSettings};
use crate::http::serve::{self, ServeLimits};
use crate::http::ApiError;
use crate::metrics::Metrics;
use crate::sandbox::flow::Sandbox;
use crate::store::sql::open::{redact_password, OpenError};
use crate::store::sql::SqlStore;
use crate::store::{Store, StoreError};
use finhook_core::seal::SealingKey;

const ADMIN_KEY_SETTING: &str = crate::http::admin_key::SETTING;

/// What every handler can reach, shared: axum hands each request its own clone of the
/// state, and one `Arc` costs less to clone and drop than the score of them inside (about
/// 1 % of the server's CPU per callback, `perf`).
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl From<AppStateInner> for AppState {
    fn from(inner: AppStateInner) -> Self {
        Self(Arc::new(inner))
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct AppStateInner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub targets: Arc<TargetPolicy>,
    /// Looks at endpoints' server certificates.
    pub certificates: Arc<crate::delivery::certificate::CertificateWatch>,
    /// The hash of the admin key (the key itself is never held), as this node last read it.
    pub admin_key: Arc<crate::http::admin_key::AdminKeyHash>,
    /// Hands new deliveries to the delivery worker, and asks it to rescan the store.
    pub dispatch: Dispatch,
    pub max_body_bytes: usize,
    /// Bytes of callbacks one instance may store; 0 for no quota.
    pub instance_quota_bytes: u64,
    pub parse_limits: ParseLimits,
    pub sandbox: Sandbox,
    pub metrics: Arc<Metrics>,
    pub sessions: Arc<crate::dashboard::Sessions>,
    /// Callbacks per second each instance may send to this node.
    pub ingest_limit: Arc<crate::http::limit::IngestLimiter>,
    /// Callback bodies' memory budget and timeout.
    pub bodies: Arc<crate::http::bodies::Bodies>,
    /// Raises and publishes operational events (run every second by [`App::run`]; tests
    /// call its `pass`).
    pub events: Arc<crate::events::Events>,
    /// Counts attempts for endpoint health (flushed every 10 s by [`App::run`]; tests call
    /// its `flush`).
    pub health: Arc<crate::health::HealthRecorder>,
    /// Runs bulk recovery jobs in the background.
    pub recoveries: crate::recovery::Recoveries,
    /// The server speaks HTTPS: the dashboard's cookie is `Secure`.
    pub tls: bool,
    /// The conformance probe's client: the delivery client's roots and target checks, at
    /// most 10 s per answer.
    pub probe_client: DeliveryClient,
}

/// Where the areas' routes meet: the API, the sandbox's Flinks-compatible routes and the
/// operators' dashboard, with one state and one fallback.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::api::routes())
        .merge(crate::sandbox::api::routes())
        .merge(crate::dashboard::routes())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(axum::middleware::from_fn(crate::http::request_id::with_request_id))
        .with_state(state)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("unsupported --database {0:?}: use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB")]
    UnsupportedDatabase(String),
    #[error("could not open the store")]
    Open(#[from] OpenError),
    #[error("FINHOOK_SECRETS_KEY must be standard base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)")]
    SecretsKey,
    #[error("the PostgreSQL store needs FINHOOK_SECRETS_KEY (base64 of 32 random bytes, the same on every node) to seal endpoint secrets")]
    SecretsKeyRequired,
    #[error("the store failed during start-up")]
    Store(#[from] StoreError),
    #[error("could not set up outbound TLS")]
    Client(#[from] ClientError),
    #[error("could not set up the certificate watch")]
    Watch(#[from] crate::delivery::certificate::WatchError),
    #[error("could not resume the sandbox connections interrupted by the last stop")]
    Sandbox(#[source] crate::sandbox::flow::SandboxError),
    #[error("could not set up TLS for the server")]
    Tls(#[from] crate::http::tls::TlsError),
    #[error("could not listen on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// How the admin key was settled at start-up.
#[derive(Debug)]
pub enum AdminKey {
    /// From `FINHOOK_ADMIN_KEY`.
    FromSettings,
    /// Already stored (hashed) by an earlier start.
    Stored,
    /// Generated now; shown once, stored only as a hash.
    Generated(ApiKey),
}

/// A built, bound server, ready to run. It owns every background task of the server: the
/// delivery worker, retention and the sandbox's delayed aggregations run on its tracker, stop
/// when its token is cancelled, and are waited for before [`App::run`] returns. (The store's
/// group-commit writer belongs to the store and ends with it.)
#[derive(Debug)]
pub struct App {
    state: AppState,
    worker: Worker,
    listener: TcpListener,
    admin_key: AdminKey,
    pending_at_start: u64,
    retention_days: u32,
    limits: ServeLimits,
    tls: Option<crate::http::tls::ServerTls>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl App {
    /// Opens the store and binds the listener; nothing is served until [`App::run`].
    pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let sealing = settings
            .secrets_key
            .as_ref()
            .map(|key| SealingKey::from_base64(&key.0))
            .transpose()
            .map_err(|_| StartError::SecretsKey)?;
        // Before anything is opened: a bad certificate is a start-up error, said at once.
        let tls = crate::http::tls::acceptor(settings.tls_cert.as_deref(), settings.tls_key.as_deref())?;
        let store = open_store(&settings.database, sealing).await?;
        let pending_at_start = store.pending_deliveries().await?;
        let (admin_key_hash, admin_key) = settle_admin_key(store.as_ref(), settings).await?;
        let targets = Arc::new(TargetPolicy {
            allow_insecure_loopback: settings.allow_insecure_loopback,
            allowed_networks: settings.allow_private_network.clone(),
        });
        let timeout = Duration::from_secs(settings.delivery_timeout_seconds.max(1));
        let extra_roots = crate::delivery::client::read_root_cas(&settings.extra_root_ca)?;
        let client = DeliveryClient::new(targets.clone(), &extra_roots, timeout)?;
        let probe_client =
            DeliveryClient::new(targets.clone(), &extra_roots, timeout.min(std::time::Duration::from_secs(10)))?;
        let certificates = Arc::new(crate::delivery::certificate::CertificateWatch::new(
            targets.clone(),
            &extra_roots,
            timeout.min(std::time::Duration::from_secs(10)),
        )?);
        let (dispatch, inbox) = Dispatch::new();
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(crate::health::HealthRecorder::default());
        let worker = Worker::new(
            WorkerContext {
                store: store.clone(),
                clock: clock.clone(),
                client,
                certificates: certificates.clone(),
                settings: WorkerSettings {
                    concurrency: settings.delivery_concurrency.max(1),
                    per_endpoint: settings.delivery_per_endpoint_concurrency.max(1),
                    timeout,
                    slow_after: Duration::from_millis(settings.delivery_slow_after_ms.max(1)),
                    poll_interval: Duration::from_millis(settings.poll_interval_ms.max(10)),
                },
                metrics: metrics.clone(),
                health: health.clone(),
            },
            inbox,
        );
        let parse_limits = ParseLimits { max_depth: settings.max_depth };
        let (tasks, stop) = (TaskTracker::new(), CancellationToken::new());
        let sandbox = Sandbox {
            store: store.clone(),
            clock: clock.clone(),
            dispatch: dispatch.clone(),
            limits: parse_limits,
            metrics: metrics.clone(),
            tasks: tasks.clone(),
            stop: stop.clone(),
        };
        let resumed_connections = sandbox.resume_owed_callbacks().await.map_err(StartError::Sandbox)?;
        let recoveries = crate::recovery::Recoveries {
            store: store.clone(),
            clock: clock.clone(),
            dispatch: dispatch.clone(),
            tasks: tasks.clone(),
            stop: stop.clone(),
        };
        recoveries.resume().await?;
        let events = Arc::new(crate::events::Events {
            store: store.clone(),
            clock: clock.clone(),
            dispatch: dispatch.clone(),
            metrics: metrics.clone(),
            settings: crate::events::EventSettings {
                failing_after: settings.failing_after_attempts.max(1),
                disable_after: (settings.disable_after_hours > 0)
                    .then(|| chrono::Duration::hours(i64::from(settings.disable_after_hours))),
                operators: settings.operator_events_instance.clone(),
            },
        });
        let state = AppState::from(AppStateInner {
            probe_client,
            tls: tls.is_some(),
            recoveries,
            health,
            events,
            store,
            clock,
            targets,
            certificates,
            admin_key: Arc::new(crate::http::admin_key::AdminKeyHash::new(
                admin_key_hash,
                matches!(admin_key, AdminKey::FromSettings),
            )),
            dispatch,
            max_body_bytes: settings.max_body_bytes,
            instance_quota_bytes: settings.instance_quota_bytes,
            parse_limits,
            sandbox,
            metrics,
            sessions: Arc::default(),
            ingest_limit: Arc::new(crate::http::limit::IngestLimiter::new(
                settings.ingest_rate_per_second,
                settings.ingest_burst,
            )),
            bodies: Arc::new(crate::http::bodies::Bodies::new(
                settings.max_bodies_in_memory_bytes,
                settings.max_body_bytes,
                Duration::from_secs(settings.http_body_timeout_seconds.max(1)),
            )),
        });
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|source| StartError::Bind { addr: settings.listen, source })?;
        let (limits, file_limit) = ServeLimits::from(settings).fitted(2 * settings.delivery_concurrency.max(1));
        if let Some(file_limit) = file_limit {
            tracing::warn!(
                file_limit,
                http_max_connections = limits.max_connections,
                "the process may open few files: inbound connections are limited to fit (raise `ulimit -n` to allow more)"
            );
        }
        if resumed_connections > 0 {
            tracing::info!(resumed_connections, "sent the sandbox callbacks owed before the last stop");
        }
        Ok(Self {
            state,
            worker,
            listener,
            admin_key,
            pending_at_start,
            retention_days: settings.retention_days,
            limits,
            tls,
            tasks,
            stop,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn admin_key(&self) -> &AdminKey {
        &self.admin_key
    }

    /// How many deliveries were pending at start-up (interrupted attempts among them): the
    /// worker makes each when it is due.
    pub fn pending_at_start(&self) -> u64 {
        self.pending_at_start
    }

    /// A handle to drive deliveries step by step (tests run with the background worker off).
    pub fn worker(&self) -> Worker {
        self.worker.clone()
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves the API and delivers in the background until `shutdown` resolves; then lets
    /// the attempts in flight finish and be recorded, and waits for every background task.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let stop = self.stop.clone();
        let worker = self.worker.clone();
        let worker = self.tasks.spawn(async move { worker.run(stop.cancelled_owned()).await });
        let (store, clock, stop) = (self.state.store.clone(), self.state.clock.clone(), self.stop.clone());
        let retention = self.tasks.spawn(crate::retention::run(
            store.clone(),
            clock,
            self.retention_days,
            stop.clone().cancelled_owned(),
        ));
        let ledger = self.tasks.spawn(crate::ledger::run(store.clone(), stop.clone().cancelled_owned()));
        let watch = self.state.certificates.clone();
        let certificates =
            self.tasks.spawn(crate::delivery::certificate::run(store.clone(), watch, stop.clone().cancelled_owned()));
        let events = self.tasks.spawn(self.state.events.clone().run(stop.clone().cancelled_owned()));
        let health = self.state.health.clone().run(store.clone(), self.state.clock.clone(), stop.cancelled_owned());
        let health = self.tasks.spawn(health);
        // `serve` stops every task of the tracker before it returns; what is left is to
        // say whether these ended by a panic.
        let served = self.serve(shutdown).await;
        let tasks = [
            ("delivery worker", worker),
            ("retention", retention),
            ("ledger", ledger),
            ("certificates", certificates),
            ("events", events),
            ("endpoint health", health),
        ];
        for (name, task) in tasks {
            if let Err(error) = task.await {
                tracing::error!(error = %error, task = name, "a background task panicked");
            }
        }
        served
    }

    /// Serves the API only, until `shutdown` resolves; deliveries are made by whoever holds
    /// [`App::worker`] (tests drive it step by step). Returns after the background tasks
    /// (sandbox aggregations) have stopped.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let stop = self.stop.clone();
        let store = self.state.store.clone();
        let health = self.state.health.clone();
        let metrics = self.state.metrics.clone();
        let served = serve::serve(self.listener, router(self.state), self.limits, self.tls, metrics, async move {
            tokio::select! {
                () = shutdown => {}
                () = stop.cancelled() => {}
            }
        })
        .await;
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        // The delivery worker's last records are in: chain them before the store closes,
        // and store the last health counts.
        crate::ledger::pass(store.as_ref()).await;
        if let Err(error) = health.flush(store.as_ref()).await {
            tracing::warn!(error = %crate::http::ErrorChain(&error), "could not store the last endpoint health counts");
        }
        // Last, once nothing of this app writes any more.
        store.close().await;
        served
    }
}

/// Opens the store a `--database` URL names.
pub async fn open_store(url: &str, sealing: Option<SealingKey>) -> Result<Arc<dyn Store>, StartError> {
    if url.starts_with("sqlite:") {
        // Claims an earlier build left in the file were cleared once by its migrations.
        Ok(Arc::new(SqlStore::open_sqlite(url, sealing).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sealing = sealing.ok_or(StartError::SecretsKeyRequired)?;
        Ok(Arc::new(SqlStore::open_postgres(url, sealing).await?))
    } else {
        Err(StartError::UnsupportedDatabase(redact_password(url)))
    }
}

/// The admin key: the one the settings give (its hash stored, so that a start without it
/// keeps it), else the one stored, else a new one (stored, and shown once).
async fn settle_admin_key(store: &dyn Store, settings: &Settings) -> Result<(KeyHash, AdminKey), StoreError> {
    let stored = store.setting(ADMIN_KEY_SETTING).await?;
    if let Some(key) = &settings.admin_key {
        let hash = KeyHash::of(&key.0);
        if stored.as_deref() != Some(hash.as_str()) {
            store.put_setting(ADMIN_KEY_SETTING, hash.as_str()).await?;
        }
        return Ok((hash, AdminKey::FromSettings));
    }
    if let Some(hash) = stored {
        return Ok((KeyHash::from_stored(hash), AdminKey::Stored));
    }
    let key = ApiKey::generate();
    store.put_setting(ADMIN_KEY_SETTING, key.hash().as_str()).await?;
    Ok((key.hash(), AdminKey::Generated(key)))
}
