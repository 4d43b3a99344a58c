//! The HTTP server's accept loop: hyper with a header timeout that also closes idle
//! keep-alive connections, a cap on open connections under the process's file limit, and,
//! once at the cap, the eviction of the longest-idle connection, so that slow or idle
//! clients can never keep a new one (a health check, an ingest) out.
//!
//! Written here rather than `axum::serve`, which sets no timer (so no header timeout) and no
//! connection limit, and sleeps a second on every `accept` error once the process runs out
//! of file descriptors. HTTP/1.1 only: the callbacks and the API are HTTP/1.1, and hyper's
//! HTTP/2 detection waits for a connection's first bytes with no timeout at all.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;

/// Descriptors kept for everything but inbound connections: the database, outgoing
/// deliveries (twice the delivery concurrency: slots and slow attempts), logs.
const RESERVED_FILES: u64 = 128;

/// How the server treats connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Open connections at most; past it, the longest-idle one is closed for a new one.
    pub max_connections: usize,
    /// A request's headers must arrive within this; a keep-alive connection idle this long
    /// is closed.
    pub header_timeout: Duration,
}

impl From<&crate::config::Settings> for ServeLimits {
    /// `http_max_connections` and `http_header_timeout_seconds`.
    fn from(settings: &crate::config::Settings) -> Self {
        Self {
            max_connections: settings.http_max_connections.max(1),
            header_timeout: Duration::from_secs(settings.http_header_timeout_seconds.max(1)),
        }
    }
}

impl Default for ServeLimits {
    /// What `finhook serve`'s default settings give.
    fn default() -> Self {
        Self::from(&crate::config::Settings::default())
    }
}

impl ServeLimits {
    /// Raises the process's soft limit on open files to its hard limit and keeps
    /// `max_connections` under it, leaving room for the database and `outgoing` delivery
    /// connections. Returns the limits to serve with and, if lowered, the file limit.
    pub fn fitted(self, outgoing: usize) -> (Self, Option<u64>) {
        let files = raise_file_limit();
        let reserved = RESERVED_FILES + u64::try_from(outgoing).unwrap_or(u64::MAX);
        let room = usize::try_from(files.saturating_sub(reserved)).unwrap_or(usize::MAX).max(16);
        if room < self.max_connections {
            (Self { max_connections: room, ..self }, Some(files))
        } else {
            (self, None)
        }
    }
}

/// The soft `RLIMIT_NOFILE` after raising it as far as the hard limit allows.
pub fn raise_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(hard)) = (limit.current, limit.maximum) {
        if current < hard {
            let raised = rustix::process::Rlimit { current: Some(hard), maximum: Some(hard) };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return hard;
            }
        }
    }
    limit.current.unwrap_or(u64::MAX)
}

/// Open connections, and the idle ones in the order they went idle.
#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Conn>,
    /// `(connection, its idle generation)`; stale entries are skipped.
    idle: VecDeque<(u64, u64)>,
}

struct Conn {
    requests: usize,
    generation: u64,
    close: Option<oneshot::Sender<()>>,
}

#[derive(Clone, Default)]
struct Connections(Arc<Mutex<Table>>);

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.lock().open.len()
    }

    /// A new connection, idle until its first request.
    fn open(&self, close: oneshot::Sender<()>) -> u64 {
        let mut table = self.lock();
        let id = table.next_id;
        table.next_id += 1;
        table.open.insert(id, Conn { requests: 0, generation: 0, close: Some(close) });
        table.idle.push_back((id, 0));
        id
    }

    fn closed(&self, id: u64) {
        self.lock().open.remove(&id);
    }

    fn request_started(&self, id: u64) {
        if let Some(conn) = self.lock().open.get_mut(&id) {
            conn.requests += 1;
            conn.generation += 1;
        }
    }

    fn request_ended(&self, id: u64) {
        let mut table = self.lock();
        let Some(conn) = table.open.get_mut(&id) else { return };
        conn.requests = conn.requests.saturating_sub(1);
        if conn.requests == 0 {
            conn.generation += 1;
            let generation = conn.generation;
            table.idle.push_back((id, generation));
        }
    }

    /// Asks the longest-idle connection to close; whether there was one.
    fn evict_idle(&self) -> bool {
        let mut table = self.lock();
        while let Some((id, generation)) = table.idle.pop_front() {
            let Some(conn) = table.open.get_mut(&id) else { continue };
            if conn.requests > 0 || conn.generation != generation {
                continue; // busy, or idle again since (a later entry stands for it)
            }
            if let Some(close) = conn.close.take() {
                let _ = close.send(());
                return true;
            }
        }
        false
    }
}

/// Marks a request as ended when dropped (its response sent, or the connection gone).
struct InFlight {
    connections: Connections,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.connections.request_ended(self.id);
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight
/// finish and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<super::tls::ServerTls>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let connections = Connections::default();
    let closing = CancellationToken::new();
    let tasks = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if out_of_files(&error) => {
                // Free a descriptor for the next one; the kernel keeps it queued meanwhile.
                metrics.connection_shed("out_of_files");
                if !connections.evict_idle() {
                    tracing::warn!(error = %error, "out of file descriptors and no idle connection to close");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                tokio::task::yield_now().await;
                continue;
            }
            Err(error) => {
                // A connection that failed between the kernel and us (say, reset): not ours to fix.
                tracing::debug!(error = %error, "accept failed");
                continue;
            }
        };
        if connections.len() >= limits.max_connections {
            if connections.evict_idle() {
                metrics.connection_shed("idle_evicted");
            } else {
                metrics.connection_shed("refused");
                drop(stream); // every connection is busy: this one waits its turn elsewhere
                continue;
            }
        }
        let (close, closed) = oneshot::channel();
        let id = connections.open(close);
        let served =
            Served { id, peer, router: router.clone(), connections: connections.clone(), limits, tls: tls.clone() };
        tasks.spawn(connection(stream, served, closed, closing.clone()));
    }
    drop(listener);
    closing.cancel();
    tasks.close();
    tasks.wait().await;
    Ok(())
}

fn out_of_files(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error())
}

/// Serves one connection until the client closes it, it times out, it is evicted, or the
/// server stops (then the request in flight finishes first).
/// What one connection is served with.
struct Served {
    id: u64,
    /// The client, for the handlers (`ConnectInfo`: the audit log).
    peer: std::net::SocketAddr,
    router: Router,
    connections: Connections,
    limits: ServeLimits,
    /// With `--tls-cert`: the handshake first, within the header timeout.
    tls: Option<super::tls::ServerTls>,
}

async fn connection(stream: TcpStream, served: Served, evicted: oneshot::Receiver<()>, closing: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let Some(super::tls::ServerTls(tls)) = served.tls.clone() else {
        return serve_connection(stream, served, evicted, closing).await;
    };
    let (connections, id) = (served.connections.clone(), served.id);
    match tokio::time::timeout(served.limits.header_timeout, tls.accept(stream)).await {
        Ok(Ok(stream)) => serve_connection(stream, served, evicted, closing).await,
        Ok(Err(error)) => {
            tracing::debug!(error = %error, "a TLS handshake failed");
            connections.closed(id);
        }
        Err(_) => {
            tracing::debug!("a TLS handshake did not finish within the header timeout");
            connections.closed(id);
        }
    }
}

async fn serve_connection<S>(stream: S, served: Served, evicted: oneshot::Receiver<()>, closing: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Served { id, peer, router, connections, limits, .. } = served;
    let service = {
        let connections = connections.clone();
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            connections.request_started(id);
            let in_flight = InFlight { connections: connections.clone(), id };
            let router = router.clone();
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            async move {
                let response = tower::ServiceExt::oneshot(router, request).await;
                drop(in_flight);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    let served = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    tokio::select! {
        result = served.as_mut() => log_end(result),
        _ = evicted => {
            served.as_mut().graceful_shutdown();
            log_end(served.await);
        }
        () = closing.cancelled() => {
            served.as_mut().graceful_shutdown();
            log_end(served.await);
        }
    }
    connections.closed(id);
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        // Timeouts, resets and malformed requests are the client's business; nothing to do.
        tracing::debug!(error = %error, "a connection ended with an error");
    }
}
