//! Retention: callbacks carry personal data, so finished messages are deleted after
//! `retention_days` (90 by default; 0 keeps them forever). Messages with a delivery still
//! pending are kept until it finishes. The audit log is kept as long.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::store::{Store, StoreResult};

/// How often the background sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60 * 60);

/// Deletes what is older than the retention period; returns how many messages went.
pub async fn sweep(store: &dyn Store, clock: &dyn Clock, retention_days: u32) -> StoreResult<u64> {
    if retention_days == 0 {
        return Ok(0);
    }
    let cutoff = clock.now() - chrono::Duration::days(i64::from(retention_days));
    let purged = store.purge_before(cutoff).await?;
    if purged > 0 {
        tracing::info!(purged, retention_days, "deleted finished messages past retention");
    }
    let audited = store.purge_audit_before(cutoff).await?;
    if audited > 0 {
        tracing::info!(audited, retention_days, "deleted audit log entries past retention");
    }
    Ok(purged)
}

/// Sweeps now and every [`SWEEP_EVERY`] until `stop` resolves.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention_days: u32,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        if let Err(error) = sweep(store.as_ref(), clock.as_ref(), retention_days).await {
            tracing::error!(error = %error, "the retention sweep failed; it runs again later");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}
