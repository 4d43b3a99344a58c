//! The group commit's running totals, read by the metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::store::GroupCommitTotals;

/// The group commit's running totals, for the metrics: from their rates an operator reads
/// the batches' size and how much of the time the writer is busy (near all of it, the
/// writer is what sets the pace).
#[derive(Debug, Default)]
pub(super) struct Totals {
    pub batches: AtomicU64,
    pub writes: AtomicU64,
    pub busy_nanos: AtomicU64,
    pub commit_nanos: AtomicU64,
}

impl Totals {
    pub fn add(counter: &AtomicU64, elapsed: Duration) {
        counter.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> GroupCommitTotals {
        let seconds = |counter: &AtomicU64| Duration::from_nanos(counter.load(Ordering::Relaxed)).as_secs_f64();
        GroupCommitTotals {
            batches: self.batches.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            busy_seconds: seconds(&self.busy_nanos),
            commit_seconds: seconds(&self.commit_nanos),
        }
    }
}
