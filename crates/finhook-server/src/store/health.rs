//! Endpoint health in the store: per endpoint and minute, how many attempts were made, how
//! many succeeded, a histogram of their latency and the last outcome (`endpoint_minutes`).
//! Each node adds what its worker saw ([`crate::health`] flushes every few seconds), so the
//! sums are right across nodes; rows older than a day and an hour are deleted.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::EndpointId;

use super::{ErrorClass, InstanceId, StoreResult};

/// The latency histogram's upper bounds, in milliseconds; an attempt slower than the last
/// counts in the last.
pub const LATENCY_BOUNDS_MS: [u64; 12] = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 60_000];

/// What one node saw of one endpoint in one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointMinute {
    pub endpoint_id: EndpointId,
    /// Minutes since the Unix epoch.
    pub minute: i64,
    pub attempts: u64,
    pub succeeded: u64,
    /// Attempts per latency bucket ([`LATENCY_BOUNDS_MS`]).
    pub latency: [u64; 12],
    /// The minute's last attempt.
    pub last_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error_class: Option<ErrorClass>,
}

impl EndpointMinute {
    pub fn new(endpoint_id: EndpointId, minute: i64) -> Self {
        Self {
            endpoint_id,
            minute,
            attempts: 0,
            succeeded: 0,
            latency: [0; 12],
            last_at: None,
            last_status_code: None,
            last_error_class: None,
        }
    }

    /// Counts one attempt in.
    pub fn add(
        &mut self,
        at: DateTime<Utc>,
        latency_ms: u64,
        succeeded: bool,
        status: Option<u16>,
        class: Option<ErrorClass>,
    ) {
        self.attempts += 1;
        self.succeeded += u64::from(succeeded);
        let bucket =
            LATENCY_BOUNDS_MS.iter().position(|bound| latency_ms <= *bound).unwrap_or(LATENCY_BOUNDS_MS.len() - 1);
        self.latency[bucket] += 1;
        if self.last_at.is_none_or(|last| at >= last) {
            (self.last_at, self.last_status_code, self.last_error_class) = (Some(at), status, class);
        }
    }
}

/// Attempts over a window, summed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Window {
    pub attempts: u64,
    pub succeeded: u64,
    /// `succeeded / attempts`; `null` without attempts.
    pub success_rate: Option<f64>,
    /// The upper bound of the latency bucket the median attempt falls in (5, 10, 25, 50,
    /// 100, 250, 500, 1,000, 2,500, 5,000, 10,000 or 60,000 ms); `null` without attempts.
    pub latency_p50_ms: Option<u64>,
    /// The same for the 99th percentile.
    pub latency_p99_ms: Option<u64>,
}

impl Window {
    pub fn of(attempts: u64, succeeded: u64, latency: &[u64; 12]) -> Self {
        let percentile = |share: f64| {
            let rank = ((attempts as f64) * share).ceil().max(1.0) as u64;
            let mut seen = 0;
            LATENCY_BOUNDS_MS.iter().zip(latency).find_map(|(bound, count)| {
                seen += count;
                (seen >= rank).then_some(*bound)
            })
        };
        let any = attempts > 0;
        Self {
            attempts,
            succeeded,
            success_rate: any.then(|| succeeded as f64 / attempts as f64),
            latency_p50_ms: if any { percentile(0.5) } else { None },
            latency_p99_ms: if any { percentile(0.99) } else { None },
        }
    }
}

/// How an endpoint is doing, from its recent attempts and its queue.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct EndpointHealth {
    pub last_hour: Window,
    pub last_day: Window,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<u16>,
    pub last_error_class: Option<ErrorClass>,
    /// Failed attempts since the last success (0 while it succeeds).
    pub consecutive_failures: u64,
    /// When the run of failures began; `null` while it succeeds.
    pub failing_since: Option<DateTime<Utc>>,
    /// Deliveries waiting for their next attempt.
    pub backlog: u64,
    /// When the most overdue of them fell due; `null` when none is due.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

/// Endpoint-health persistence, a part of every [`super::Store`].
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Adds what a node saw (each row's counts to the stored ones).
    async fn add_endpoint_minutes(&self, minutes: &[EndpointMinute]) -> StoreResult<()>;
    /// Deletes the minutes before `before`; how many rows.
    async fn forget_endpoint_minutes(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// Every endpoint's attempts per hour since `since` (hour start, attempts, succeeded),
    /// oldest first; hours without attempts are left out.
    async fn attempts_by_hour(&self, since: DateTime<Utc>) -> StoreResult<Vec<(DateTime<Utc>, u64, u64)>>;
    /// Callbacks (and events) received since `since`.
    async fn messages_since(&self, since: DateTime<Utc>) -> StoreResult<u64>;
    /// Per instance with any: how many messages' latest delivery somewhere has failed.
    async fn failed_by_instance(&self) -> StoreResult<Vec<(String, u64)>>;
    /// The health of `instance`'s endpoints (or of every instance's), as of `now`.
    async fn endpoint_health(
        &self,
        instance: Option<InstanceId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(EndpointId, EndpointHealth)>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_the_bounds_of_the_buckets_they_fall_in() {
        let mut minute = EndpointMinute::new(EndpointId::generate(), 0);
        let at = DateTime::from_timestamp(1_773_511_200, 0).expect("time");
        for n in 0..100 {
            let latency = if n < 98 { 3 } else { 700 };
            minute.add(at, latency, n % 10 != 0, Some(200), None);
        }
        let window = Window::of(minute.attempts, minute.succeeded, &minute.latency);
        assert_eq!((window.attempts, window.succeeded), (100, 90));
        assert_eq!(window.success_rate, Some(0.9));
        assert_eq!((window.latency_p50_ms, window.latency_p99_ms), (Some(5), Some(1_000)));
        minute.add(at, 120_000, false, None, Some(ErrorClass::Timeout));
        assert_eq!(minute.latency[11], 1, "beyond the last bound counts in the last bucket");
        assert_eq!((minute.last_status_code, minute.last_error_class), (None, Some(ErrorClass::Timeout)));
        assert_eq!(Window::of(0, 0, &[0; 12]), Window::default(), "no attempts, no rates");
    }
}
