//! The ledger's sealer: a background task that chains the attempts queued while another
//! PostgreSQL node held the chains (see [`crate::store::ledger`]; on SQLite every attempt
//! is chained as it is recorded, and the queue stays empty), and `finhook_core::ledger`
//! for what a hash covers.

use std::sync::Arc;
use std::time::Duration;

use crate::store::ledger::SEAL_BATCH;
use crate::store::{Store, StoreResult};

/// How often the sealer looks for queued attempts. Exports and shutdown seal first, so this
/// sets only how soon a queued attempt shows in the heads of `/metrics` and the dashboard.
pub const SEAL_EVERY: Duration = Duration::from_secs(1);

/// The most batches one pass seals: a bound, so a pass ends even if attempts are recorded
/// faster than it chains them (the next pass carries on).
const MAX_BATCHES_PER_PASS: usize = 1000;

/// Chains what is queued, batch by batch, until the queue is empty, another node holds the
/// sealer's lock, or [`MAX_BATCHES_PER_PASS`] batches are done; how many entries it chained.
pub async fn seal_queued(store: &dyn Store) -> StoreResult<usize> {
    let mut sealed = 0;
    for _ in 0..MAX_BATCHES_PER_PASS {
        let batch = store.seal_ledger().await?;
        sealed += batch;
        if batch < SEAL_BATCH {
            break;
        }
    }
    Ok(sealed)
}

/// Seals every [`SEAL_EVERY`] until `stop` resolves. (`App::run` seals once more after the
/// delivery worker's last records; after a crash, the queue is sealed at the next start.)
pub async fn run(store: Arc<dyn Store>, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        pass(store.as_ref()).await;
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(SEAL_EVERY) => {}
        }
    }
}

/// One pass; a failure is logged, and what was not sealed stays queued for the next.
pub async fn pass(store: &dyn Store) {
    if let Err(error) = seal_queued(store).await {
        tracing::error!(error = %error, "sealing the delivery ledger failed; the attempts stay queued and the next pass seals them");
    }
}
