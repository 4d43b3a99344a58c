//! Endpoint health as the delivery worker sees it: each attempt is counted per endpoint and
//! minute in memory and added to the store every [`FLUSH_EVERY`] (and at shutdown), so the
//! hot path writes nothing more; health over the last hour and day is read back from the
//! store ([`crate::store::health`]), summed over every node. A crash loses at most the
//! last few seconds of counts, never a callback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use finhook_core::ids::EndpointId;

use crate::clock::Clock;
use crate::store::health::EndpointMinute;
use crate::store::{AttemptRecord, Store, StoreResult};

/// How often the counts go to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How long minutes are kept: the longest window (a day) and an hour more.
pub const KEEP: chrono::Duration = chrono::Duration::hours(25);

/// The counts not yet in the store.
#[derive(Debug, Default)]
pub struct HealthRecorder {
    minutes: Mutex<HashMap<(EndpointId, i64), EndpointMinute>>,
}

impl HealthRecorder {
    /// Counts one attempt to `endpoint`.
    pub fn record(&self, endpoint: &EndpointId, attempt: &AttemptRecord) {
        let minute = attempt.started_at.timestamp().div_euclid(60);
        let mut minutes = self.minutes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        minutes.entry((endpoint.clone(), minute)).or_insert_with(|| EndpointMinute::new(endpoint.clone(), minute)).add(
            attempt.started_at,
            attempt.latency_ms,
            attempt.succeeded,
            attempt.status_code,
            attempt.error_class,
        );
    }

    /// Adds what was counted to the store; how many endpoint-minutes. What could not be
    /// stored is kept for the next flush.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<usize> {
        let taken: Vec<EndpointMinute> = {
            let mut minutes = self.minutes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::take(&mut *minutes).into_values().collect()
        };
        if let Err(error) = store.add_endpoint_minutes(&taken).await {
            let mut minutes = self.minutes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for kept in taken {
                merge(&mut minutes, kept);
            }
            return Err(error);
        }
        Ok(taken.len())
    }

    /// Flushes every [`FLUSH_EVERY`], and deletes minutes past [`KEEP`] now and then, until
    /// `stop` resolves. (`App::serve` flushes once more after the worker has stopped.)
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut next_cleanup: Option<DateTime<Utc>> = None;
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(FLUSH_EVERY) => {}
            }
            if let Err(error) = self.flush(store.as_ref()).await {
                tracing::warn!(error = %crate::http::ErrorChain(&error), "could not store endpoint health counts; they are kept for the next try");
            }
            let now = clock.now();
            if next_cleanup.is_none_or(|at| at <= now) {
                next_cleanup = Some(now + chrono::Duration::hours(1));
                if let Err(error) = store.forget_endpoint_minutes(now - KEEP).await {
                    tracing::warn!(error = %crate::http::ErrorChain(&error), "could not delete old endpoint health counts");
                }
            }
        }
    }
}

fn merge(minutes: &mut HashMap<(EndpointId, i64), EndpointMinute>, kept: EndpointMinute) {
    let entry = minutes
        .entry((kept.endpoint_id.clone(), kept.minute))
        .or_insert_with(|| EndpointMinute::new(kept.endpoint_id.clone(), kept.minute));
    entry.attempts += kept.attempts;
    entry.succeeded += kept.succeeded;
    for (slot, count) in entry.latency.iter_mut().zip(kept.latency) {
        *slot += count;
    }
    if let Some(at) = kept.last_at.filter(|at| entry.last_at.is_none_or(|last| *at >= last)) {
        (entry.last_at, entry.last_status_code, entry.last_error_class) =
            (Some(at), kept.last_status_code, kept.last_error_class);
    }
}
