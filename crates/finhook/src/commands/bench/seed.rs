//! `--backlog N --seed`: writes a backlog straight into the stopped server's store, the way
//! ingest stores a callback (the same `Store::ingest`, the same rows and group commit), so
//! a backlog of a million pending deliveries takes minutes to build instead of the hours
//! it would take through the HTTP API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Utc;
use finhook_core::flinks::{parse_callback, ParseLimits};
use finhook_server::store::{IngestOutcome, NewMessage, Store};
use tokio::task::JoinSet;

/// Writers at once: enough to fill the group commit's batches (256 writes each).
const WRITERS: usize = 512;

/// Ingests `messages` copies of `payload`, round robin over the instances named, into the
/// store at `database`; every delivery is due at once. Returns the deliveries scheduled.
/// `tick` is called with the number stored so far.
pub async fn seed(
    database: &str,
    secrets_key: &str,
    instances: &[String],
    payload: &[u8],
    messages: usize,
    tick: impl Fn(usize) + Send + Sync + 'static,
) -> Result<usize, String> {
    let sealing = finhook_core::seal::SealingKey::from_base64(secrets_key).map_err(|e| e.to_string())?;
    let store = finhook_server::app::open_store(database, Some(sealing)).await.map_err(|e| format!("seed: {e}"))?;
    let result = fill(store.clone(), instances, payload, messages, tick).await;
    // Releases the embedded store's lock for the server that drains it.
    store.close().await;
    result
}

async fn fill(
    store: Arc<dyn Store>,
    instances: &[String],
    payload: &[u8],
    messages: usize,
    tick: impl Fn(usize) + Send + Sync + 'static,
) -> Result<usize, String> {
    let keys = parse_callback(payload, ParseLimits::default()).map_err(|e| format!("seed payload: {e}"))?.keys();
    let mut ids = Vec::with_capacity(instances.len());
    for name in instances {
        let instance = store.instance_by_name(name).await.map_err(|e| format!("seed: {e}"))?;
        ids.push(instance.ok_or_else(|| format!("seed: no instance {name}"))?.id);
    }
    let payload = bytes::Bytes::copy_from_slice(payload);
    let template = Arc::new(finhook_server::ingest::new_message(ids[0], &payload, keys, None, Utc::now()));
    let (next, stored, scheduled) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (ids, tick) = (Arc::new(ids), Arc::new(tick));
    let mut writers = JoinSet::new();
    for _ in 0..WRITERS.min(messages) {
        let (store, template, ids, next, stored, scheduled, tick) = (
            store.clone(),
            template.clone(),
            ids.clone(),
            next.clone(),
            stored.clone(),
            scheduled.clone(),
            tick.clone(),
        );
        writers.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages {
                    return Ok::<(), String>(());
                }
                let message = NewMessage { instance_id: ids[n % ids.len()], now: Utc::now(), ..(*template).clone() };
                match store.ingest(message).await.map_err(|e| format!("seed: {e}"))? {
                    IngestOutcome::Created { deliveries, .. } => {
                        scheduled.fetch_add(deliveries.len(), Ordering::Relaxed)
                    }
                    other => return Err(format!("seed: unexpected {other:?}")),
                };
                tick(stored.fetch_add(1, Ordering::Relaxed) + 1);
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(scheduled.load(Ordering::Relaxed))
}
