//! The per-instance ingest rate limit: a token bucket per instance, on the app's clock.
//!
//! Hand-written (a few lines) rather than `governor`: the buckets must run on the injected
//! [`crate::clock::Clock`] (wall-clock `DateTime`s a test moves by hand), which governor's
//! monotonic clocks cannot be. The buckets live in this process: on a shared store each
//! node enforces the limit for the requests it receives.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::store::InstanceId;

/// Tokens of one instance, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: DateTime<Utc>,
}

/// Admits `rate` callbacks per second per instance, with bursts of up to `burst`.
#[derive(Debug)]
pub struct IngestLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<InstanceId, Bucket>>,
}

/// Refused: the instance is over its rate; how long until one more callback fits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    pub retry_after_seconds: u64,
    pub rate: u32,
    pub burst: u32,
}

impl IngestLimiter {
    /// `rate` per second (0: no limit) and `burst` (at least 1 when limited).
    pub fn new(rate: u32, burst: u32) -> Self {
        Self { rate: f64::from(rate), burst: f64::from(burst.max(1)), buckets: Mutex::default() }
    }

    /// Takes one token of `instance` at `now`, or says how long to wait for one. A clock
    /// that went back refills nothing (and takes nothing away).
    pub fn take(&self, instance: InstanceId, now: DateTime<Utc>) -> Result<(), Limited> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bucket = buckets.entry(instance).or_insert(Bucket { tokens: self.burst, at: now });
        let elapsed = (now - bucket.at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - bucket.tokens) / self.rate).ceil().max(1.0);
        Err(Limited { retry_after_seconds: wait as u64, rate: self.rate as u32, burst: self.burst as u32 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_and_each_instance_alone() {
        let limiter = IngestLimiter::new(2, 3);
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).expect("t0");
        let (a, b) = (InstanceId(1), InstanceId(2));
        for _ in 0..3 {
            assert_eq!(limiter.take(a, t0), Ok(()));
        }
        let refused = limiter.take(a, t0).expect_err("over the burst");
        assert_eq!((refused.retry_after_seconds, refused.rate, refused.burst), (1, 2, 3));
        assert_eq!(limiter.take(b, t0), Ok(()), "another instance has its own bucket");
        // Half a second later, one token (2 per second) is back, and only one.
        let later = t0 + chrono::Duration::milliseconds(500);
        assert_eq!(limiter.take(a, later), Ok(()));
        assert!(limiter.take(a, later).is_err());
        // A long pause refills up to the burst, not beyond.
        let much_later = later + chrono::Duration::hours(1);
        for _ in 0..3 {
            assert_eq!(limiter.take(a, much_later), Ok(()));
        }
        assert!(limiter.take(a, much_later).is_err());
        // The clock going back gives nothing.
        assert!(limiter.take(a, t0).is_err());
    }

    #[test]
    fn a_rate_of_zero_is_no_limit() {
        let limiter = IngestLimiter::new(0, 0);
        let now = Utc::now();
        assert!((0..10_000).all(|_| limiter.take(InstanceId(1), now).is_ok()));
    }
}
