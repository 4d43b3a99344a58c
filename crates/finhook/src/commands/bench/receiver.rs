//! The bench's receiver, in this process on 127.0.0.1: one path per endpoint, answers 200
//! (or 503 while the bench holds it "down"), and notes when each delivery first arrived.
//! The paths under [`HANGING_PATH`] never answer at all.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode, Uri};

/// The path (and the prefix of the paths) of the endpoints that never answer
/// (`--hanging`): their requests are held until the server gives up on them.
pub const HANGING_PATH: &str = "/hanging";

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct Arrivals {
    /// `(endpoint path, webhook-id)` → when it first arrived with a 200.
    first_seen: Mutex<HashMap<(String, String), Instant>>,
    /// The same → its `webhook-sequence`, when it had one.
    sequences: Mutex<HashMap<(String, String), u64>>,
    count: AtomicUsize,
    refused: AtomicUsize,
    /// The deliveries refused at least once.
    refused_once: Mutex<HashSet<(String, String)>>,
    down: AtomicBool,
}

impl Arrivals {
    /// Deliveries accepted so far (each endpoint's copy of a callback counts once).
    pub fn delivered(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Requests answered 503 while down.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Distinct deliveries refused at least once while down.
    pub fn refused_deliveries(&self) -> usize {
        self.refused_once.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// While down, every request is answered 503 and not counted as delivered.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// When the delivery of `message_id` to the endpoint at `path` first arrived.
    pub fn snapshot(&self) -> HashMap<(String, String), Instant> {
        self.first_seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The `webhook-sequence` each delivery first arrived with.
    pub fn sequences(&self) -> HashMap<(String, String), u64> {
        self.sequences.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn arrived(&self, path: &str, headers: &HeaderMap) -> StatusCode {
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        if self.down.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            self.refused_once.lock().unwrap_or_else(|p| p.into_inner()).insert((path.to_string(), id));
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let mut seen = self.first_seen.lock().unwrap_or_else(|p| p.into_inner());
        let key = (path.to_string(), id);
        if seen.contains_key(&key) {
            return StatusCode::OK;
        }
        seen.insert(key.clone(), Instant::now());
        drop(seen);
        self.count.fetch_add(1, Ordering::SeqCst);
        let sequence = headers.get("webhook-sequence").and_then(|v| v.to_str().ok()?.parse().ok());
        if let Some(sequence) = sequence {
            self.sequences.lock().unwrap_or_else(|p| p.into_inner()).insert(key, sequence);
        }
        StatusCode::OK
    }
}

/// Serves until the process ends; returns the address.
pub async fn start(arrivals: Arc<Arrivals>) -> Result<SocketAddr, String> {
    // Every body is read to its end before the answer, as a real receiver does to verify
    // a signature. A receiver that answers first makes hyper close the connection under
    // the rest of the body: finhook then sees a broken pipe, records a failed attempt for
    // a callback that was counted here, and retries it half an hour later (with 64 KiB
    // bodies, 9 of 1,500 deliveries, and the bench waited for them until its timeout).
    let app = axum::Router::new()
        .fallback(move |uri: Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let arrivals = arrivals.clone();
            async move {
                if uri.path().starts_with(HANGING_PATH) {
                    // Ends when the server closes the connection at its timeout.
                    std::future::pending::<()>().await;
                }
                drop(body);
                arrivals.arrived(uri.path(), &headers)
            }
        })
        // The bodies are the bench's own payloads, of any size it was asked for.
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("receiver: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("receiver: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}
