//! A TCP gate in front of the test PostgreSQL, to cut the database off and bring it back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A TCP gate between finhook and the test PostgreSQL, loopback only. Open, it forwards
/// every connection. [`DbGate::hang_up`]: it cuts the connections it carries and hangs up
/// new ones at once (counting them). [`DbGate::stop`]: it cuts them and stops listening,
/// so connecting is refused, as with a stopped PostgreSQL.
pub struct DbGate {
    addr: SocketAddr,
    upstream: String,
    shared: Arc<GateShared>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct GateShared {
    open: std::sync::atomic::AtomicBool,
    refused: std::sync::atomic::AtomicUsize,
    refused_changed: tokio::sync::Notify,
    /// Bumped at every hang-up or stop: forwarded connections end when it changes.
    cuts: tokio::sync::watch::Sender<u64>,
}

impl DbGate {
    /// A gate in front of the PostgreSQL server of `database` (a `postgres://` URL), open.
    pub async fn start(database: &str) -> Self {
        let url = url::Url::parse(database).expect("database url");
        let upstream = format!("{}:{}", url.host_str().expect("host"), url.port().unwrap_or(5432));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind gate");
        let shared = Arc::new(GateShared {
            open: true.into(),
            refused: 0.into(),
            refused_changed: tokio::sync::Notify::new(),
            cuts: tokio::sync::watch::channel(0).0,
        });
        let gate =
            Self { addr: listener.local_addr().expect("gate addr"), upstream, shared, listener: Mutex::new(None) };
        gate.serve(listener);
        gate
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        use std::sync::atomic::Ordering;
        let (gate, upstream) = (self.shared.clone(), self.upstream.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate.open.load(Ordering::Acquire) {
                    drop(inbound);
                    gate.refused.fetch_add(1, Ordering::AcqRel);
                    gate.refused_changed.notify_waiters();
                    continue;
                }
                let mut cuts = gate.cuts.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        if let Some(old) = self.listener.lock().expect("gate").replace(task) {
            old.abort();
        }
    }

    /// `database` with its server replaced by this gate.
    pub fn url(&self, database: &str) -> String {
        let mut url = url::Url::parse(database).expect("database url");
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(self.addr.port())).expect("port");
        url.to_string()
    }

    /// Cuts every connection and hangs up new ones as they come.
    pub fn hang_up(&self) {
        self.shared.open.store(false, std::sync::atomic::Ordering::Release);
        self.shared.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// Cuts every connection and stops listening: connecting is refused.
    pub async fn stop(&self) {
        self.hang_up();
        let task = self.listener.lock().expect("gate").take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await; // the listening socket is closed once the task is gone
        }
    }

    /// Forwards again, listening on the same port.
    pub async fn open(&self) {
        self.shared.open.store(true, std::sync::atomic::Ordering::Release);
        if self.listener.lock().expect("gate").is_none() {
            let listener = tokio::net::TcpListener::bind(self.addr).await.expect("listen again on the gate's port");
            self.serve(listener);
        }
    }

    /// Waits until the gate has hung up on `count` connections (at most a minute).
    pub async fn wait_refused(&self, count: usize) {
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let changed = self.shared.refused_changed.notified();
                if self.shared.refused.load(std::sync::atomic::Ordering::Acquire) >= count {
                    return;
                }
                changed.await;
            }
        })
        .await;
        assert!(waited.is_ok(), "nobody tried to reach the database {count} times in a minute");
    }
}

impl Drop for DbGate {
    fn drop(&mut self) {
        self.hang_up();
        if let Some(task) = self.listener.lock().ok().and_then(|mut task| task.take()) {
            task.abort();
        }
    }
}
