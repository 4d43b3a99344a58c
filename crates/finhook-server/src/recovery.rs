//! Bulk recovery jobs: re-send the failed deliveries of a time range, batch by batch, in
//! the background, and say how far they got (see [`crate::store::recovery`]). A job is
//! run by the node that was asked; one interrupted by a stop is resumed at the next start
//! of any node (a batch takes only what is still failed, so nothing is sent twice).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use finhook_core::ids::{EndpointId, RecoveryId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::delivery::handoff::Dispatch;
use crate::store::recovery::{Recovery, RECOVER_BATCH};
use crate::store::{InstanceId, Store, StoreResult};

/// The most batches one job makes: a bound on any loop (a million deliveries).
const MAX_BATCHES: usize = 5_000;

/// Starts and resumes recovery jobs on the server's task tracker.
#[derive(Debug, Clone)]
pub struct Recoveries {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub dispatch: Dispatch,
    pub tasks: TaskTracker,
    pub stop: CancellationToken,
}

impl Recoveries {
    /// Records a new job (see [`crate::store::recovery::RecoveryStore::start_recovery`]) and runs it.
    pub async fn start(
        &self,
        instance: InstanceId,
        endpoint: Option<&EndpointId>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Recovery> {
        let recovery = self.store.start_recovery(instance, endpoint, since, until, self.clock.now()).await?;
        tracing::info!(recovery = %recovery.id, total = recovery.total, "recovery started");
        self.spawn(recovery.id.clone());
        Ok(recovery)
    }

    /// Runs the job in the background until it is done, fails, or the server stops.
    pub fn spawn(&self, id: RecoveryId) {
        let this = self.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = this.stop.cancelled() => {}
                () = this.run(&id) => {}
            }
        });
    }

    /// Resumes the jobs a stop interrupted; how many.
    pub async fn resume(&self) -> StoreResult<usize> {
        let running = self.store.running_recoveries().await?;
        for id in &running {
            tracing::info!(recovery = %id, "resuming a recovery interrupted by the last stop");
            self.spawn(id.clone());
        }
        Ok(running.len())
    }

    async fn run(&self, id: &RecoveryId) {
        let outcome = self.batches(id).await;
        let now = self.clock.now();
        let error = outcome.as_ref().err().map(|error| crate::http::ErrorChain(error).to_string());
        if let Some(error) = &error {
            tracing::error!(recovery = %id, error = %error, "a recovery failed; what it re-sent stays re-sent");
        }
        if let Err(finish) = self.store.finish_recovery(id, error.as_deref(), now).await {
            tracing::error!(recovery = %id, error = %crate::http::ErrorChain(&finish), "could not record a recovery's end; it is resumed at the next start");
        }
    }

    async fn batches(&self, id: &RecoveryId) -> StoreResult<()> {
        for _ in 0..MAX_BATCHES {
            let taken = self.store.recover_batch(id, self.clock.now()).await?;
            if taken > 0 {
                self.dispatch.rescan();
            }
            if taken < RECOVER_BATCH {
                return Ok(());
            }
        }
        Ok(())
    }
}
