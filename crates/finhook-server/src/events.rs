//! The operational events' pass: every second, report endpoints that started failing,
//! disable those that failed too long, and publish what waits in the outbox as messages for
//! the worker (see [`crate::store::events`] for where events come from and why each is
//! published once).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::delivery::handoff::Dispatch;
use crate::delivery::Body;
use crate::metrics::Metrics;
use crate::store::events::PUBLISH_BATCH;
use crate::store::{InstanceId, Store, StoreResult};

/// How often the pass runs.
pub const PASS_EVERY: Duration = Duration::from_secs(1);

/// The most outbox batches one pass publishes: a bound, so a pass always ends.
const MAX_BATCHES_PER_PASS: usize = 100;

/// When events are raised, and who else hears them.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// Failed attempts in a row that make `endpoint.failing`.
    pub failing_after: u32,
    /// How long every attempt must have failed before the endpoint is disabled; `None`:
    /// never.
    pub disable_after: Option<chrono::Duration>,
    /// The operators' instance, which also hears every other instance's events.
    pub operators: Option<String>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub reported_failing: usize,
    pub disabled: usize,
    /// Messages stored (an event told to two instances counts twice).
    pub published: usize,
}

/// The pass and what it needs; one per server.
#[derive(Debug)]
pub struct Events {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub dispatch: Dispatch,
    pub metrics: Arc<Metrics>,
    pub settings: EventSettings,
}

impl Events {
    /// One pass, at the clock's now. Tests call it to raise and publish events at once.
    pub async fn pass(&self) -> StoreResult<Pass> {
        let now = self.clock.now();
        let mut pass =
            Pass { reported_failing: self.store.report_failing(self.settings.failing_after).await?, ..Pass::default() };
        if let Some(after) = self.settings.disable_after {
            let disabled = self.store.disable_failing(now - after, now).await?;
            for endpoint in &disabled {
                tracing::warn!(
                    %endpoint,
                    failing_for_hours = after.num_hours(),
                    "every attempt to an endpoint failed for too long: it is disabled, and its deliveries wait until it is enabled again"
                );
            }
            pass.disabled = disabled.len();
        }
        pass.published = self.publish(now).await?;
        Ok(pass)
    }

    /// Publishes the outbox batch by batch and hands each message's deliveries over.
    async fn publish(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        let operators = self.operators().await?;
        let mut published = 0;
        for _ in 0..MAX_BATCHES_PER_PASS {
            let (taken, batch) = self.store.publish_events(operators, now).await?;
            for message in &batch {
                self.metrics.event_published(message.event_type.as_str());
                self.dispatch.hand_off(
                    &message.message_id,
                    &Body::hashed(message.payload.clone(), &message.body_sha256),
                    &message.deliveries,
                );
            }
            published += batch.len();
            if taken < PUBLISH_BATCH {
                break;
            }
        }
        Ok(published)
    }

    /// The operators' instance, if one is set and exists.
    async fn operators(&self) -> StoreResult<Option<InstanceId>> {
        let Some(name) = &self.settings.operators else { return Ok(None) };
        let found = self.store.instance_by_name(name).await?;
        if found.is_none() {
            tracing::warn!(instance = %name, "operator_events_instance names no instance; events go to their own instance only");
        }
        Ok(found.map(|instance| instance.id))
    }

    /// Runs a pass every [`PASS_EVERY`] until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.pass().await {
                tracing::error!(error = %crate::http::ErrorChain(&error), "the operational events pass failed; the next one tries again");
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(PASS_EVERY) => {}
            }
        }
    }
}
