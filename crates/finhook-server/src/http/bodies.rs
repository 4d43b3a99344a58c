//! Callback bodies on their way in: how many bytes of them the server holds in memory at
//! once, and how long one may take to arrive. Without a budget, 32 concurrent 30 MiB
//! uploads peaked at 3–4 GiB; without a timeout, a trickled body held its connection and
//! buffer for as long as the client liked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ApiError;
use crate::ingest::IngestError;

/// The longest a request waits for room in the budget before it is told to come back
/// (never longer than half the time its body may take to arrive). Waiting costs a connection, not memory:
/// the body stays in the client's socket until there is room.
const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// Bodies from this size on call the [`after_large_bodies`] hook once they are done with.
pub const LARGE_BODY_BYTES: usize = 4 * 1024 * 1024;

static AFTER_LARGE: OnceLock<fn()> = OnceLock::new();
static AFTER_LARGE_PENDING: AtomicBool = AtomicBool::new(false);

/// Sets what runs (on a blocking thread, one run at a time) after a body of at least
/// [`LARGE_BODY_BYTES`] is done with: the binary gives the allocator's free memory back to
/// the system there, so that a burst of large callbacks does not stay resident.
pub fn after_large_bodies(hook: fn()) {
    let _ = AFTER_LARGE.set(hook);
}

/// The budget and the clock of callback bodies.
#[derive(Debug)]
pub struct Bodies {
    budget: Arc<Semaphore>,
    budget_bytes: usize,
    timeout: Duration,
}

/// A body read in full, with its share of the budget (returned when this is dropped, once
/// the callback is stored or refused).
#[derive(Debug)]
pub struct ReadBody {
    pub bytes: bytes::Bytes,
    _share: OwnedSemaphorePermit,
}

impl Drop for ReadBody {
    fn drop(&mut self) {
        let Some(hook) = AFTER_LARGE.get().copied() else { return };
        if self.bytes.len() < LARGE_BODY_BYTES || AFTER_LARGE_PENDING.swap(true, Ordering::AcqRel) {
            return;
        }
        let run = move || {
            AFTER_LARGE_PENDING.store(false, Ordering::Release);
            hook();
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn_blocking(run));
        } else {
            run();
        }
    }
}

/// The body's length as its `Content-Length` header declares it, if it does.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(axum::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok())
}

impl Bodies {
    /// `budget_bytes` is raised to the largest body, so that any body can be received.
    pub fn new(budget_bytes: usize, max_body_bytes: usize, timeout: Duration) -> Self {
        let budget_bytes = budget_bytes.max(max_body_bytes).clamp(1, Semaphore::MAX_PERMITS);
        Self { budget: Arc::new(Semaphore::new(budget_bytes)), budget_bytes, timeout }
    }

    /// Reads a whole body of at most `limit` bytes: first its share of the budget (its
    /// declared length, or `limit` when it declares none), then the bytes, within the
    /// timeout. Refused at once when it declares more than `limit`.
    pub async fn read(&self, headers: &HeaderMap, body: Body, limit: usize) -> Result<ReadBody, ApiError> {
        let declared = declared_length(headers);
        if declared.is_some_and(|length| length > limit as u64) {
            return Err(IngestError::TooLarge { limit }.into());
        }
        let share =
            declared.map_or(limit, |length| usize::try_from(length).unwrap_or(limit)).clamp(1, self.budget_bytes);
        let share = u32::try_from(share).unwrap_or(u32::MAX);
        let permit =
            tokio::time::timeout(BUDGET_WAIT.min(self.timeout / 2), self.budget.clone().acquire_many_owned(share))
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or(ApiError::Busy { budget_bytes: self.budget_bytes, retry_after_seconds: 1 })?;
        let read = tokio::time::timeout(self.timeout, Limited::new(body, limit).collect())
            .await
            .map_err(|_| ApiError::BodyTimeout { seconds: self.timeout.as_secs() })?;
        match read {
            Ok(collected) => Ok(ReadBody { bytes: collected.to_bytes(), _share: permit }),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                Err(IngestError::TooLarge { limit }.into())
            }
            Err(error) => Err(IngestError::BodyRead(error.to_string()).into()),
        }
    }
}
