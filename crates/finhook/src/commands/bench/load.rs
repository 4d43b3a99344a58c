//! The ingest load: a closed loop (a fixed number of requests in flight) or an open loop (a
//! fixed offered rate, whatever the answers' latency), spread over the bench's instances.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::BENCH_KEY;

/// At most this many requests in flight in the open loop; past it the offered rate is not
/// kept, and the report's ingest rate says so.
const OPEN_LOOP_IN_FLIGHT: usize = 8192;

/// How the callbacks are offered.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// This many requests in flight, each sent when the previous one was answered.
    Closed { concurrency: usize },
    /// This many requests per second, sent on schedule.
    Open { per_second: f64 },
}

/// A callback the server acknowledged: to which instance, of which LoginId (its place in
/// the run's bodies), and when the 202 came.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub instance: usize,
    pub login: usize,
    pub at: Instant,
}

/// What the load generator shares between its tasks.
struct Generator {
    http: reqwest::Client,
    /// The callbacks URL of each instance; callback `n` goes to instance `n % len`.
    urls: Vec<String>,
    /// The bodies; callback `n` is sent with `n % len` (one per LoginId with `--logins`).
    payloads: Vec<Bytes>,
    accepted: Mutex<HashMap<String, Accepted>>,
}

#[derive(serde::Deserialize)]
struct Ingested {
    message_id: String,
}

impl Generator {
    async fn send(&self, n: usize) -> Result<(), String> {
        let (instance, login) = (n % self.urls.len(), n % self.payloads.len());
        let response = self
            .http
            .post(&self.urls[instance])
            .bearer_auth(BENCH_KEY)
            .body(self.payloads[login].clone())
            .send()
            .await
            .map_err(|e| format!("ingest: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("ingest: {e}"))?;
        let at = Instant::now();
        if status.as_u16() != 202 {
            return Err(format!("ingest answered {status}: {}", String::from_utf8_lossy(&body)));
        }
        let ingested: Ingested = serde_json::from_slice(&body).map_err(|e| format!("ingest answer: {e}"))?;
        self.accepted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ingested.message_id, Accepted { instance, login, at });
        Ok(())
    }
}

/// Ingests `messages` callbacks; returns what was acknowledged. `tick` is called as
/// answers come in (for the progress bar).
pub async fn ingest(
    http: reqwest::Client,
    urls: Vec<String>,
    payloads: Vec<Bytes>,
    messages: usize,
    shape: Shape,
    tick: impl Fn(usize) + Send + Sync + 'static,
) -> Result<HashMap<String, Accepted>, String> {
    let generator = Arc::new(Generator { http, urls, payloads, accepted: Mutex::default() });
    let answered = Arc::new(AtomicUsize::new(0));
    let tick = Arc::new(tick);
    let mut tasks = JoinSet::new();
    match shape {
        Shape::Closed { concurrency } => {
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..concurrency {
                let (generator, next, answered, tick) =
                    (generator.clone(), next.clone(), answered.clone(), tick.clone());
                tasks.spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::SeqCst);
                        if n >= messages {
                            return Ok(());
                        }
                        generator.send(n).await?;
                        tick(answered.fetch_add(1, Ordering::SeqCst) + 1);
                    }
                });
            }
        }
        Shape::Open { per_second } => {
            let slots = Arc::new(Semaphore::new(OPEN_LOOP_IN_FLIGHT));
            let started = Instant::now();
            let mut sent = 0;
            while sent < messages {
                // Request `n` is due `(n + 1) / per_second` after the start: sleep until the
                // next one is, rather than waking every millisecond to look (at 100/s that
                // was ten wake-ups of the load generator per request, on the cores the
                // server under test runs on).
                let next_due = Duration::from_secs_f64((sent + 1) as f64 / per_second);
                tokio::time::sleep_until((started + next_due).into()).await;
                // Every request due by now on the schedule `per_second` since the start.
                let due = ((started.elapsed().as_secs_f64() * per_second) as usize).min(messages);
                while sent < due {
                    let slot = slots.clone().acquire_owned().await.map_err(|e| e.to_string())?;
                    let (generator, answered, tick, n) = (generator.clone(), answered.clone(), tick.clone(), sent);
                    tasks.spawn(async move {
                        let result = generator.send(n).await;
                        drop(slot);
                        tick(answered.fetch_add(1, Ordering::SeqCst) + 1);
                        result
                    });
                    sent += 1;
                }
                while let Some(done) = tasks.try_join_next() {
                    done.map_err(|e| e.to_string())??;
                }
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    drop(tasks);
    let generator = Arc::try_unwrap(generator).map_err(|_| "the load generator is still in use".to_string())?;
    Ok(generator.accepted.into_inner().unwrap_or_else(|p| p.into_inner()))
}
