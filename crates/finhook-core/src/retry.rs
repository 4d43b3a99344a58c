//! The retry policy of an endpoint and the schedule it implies.
//!
//! The default is Flinks' rule: 10 attempts in total, the first at once, then one every
//! 30 minutes. Attempt `n` (1-based) is followed by attempt `n + 1` after
//! [`RetryPolicy::delay_after`]`(n)`, until `max_attempts` have been made.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest an exponential schedule waits between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// Every retry waits `interval_seconds`.
    Fixed,
    /// Retry `n` waits `interval_seconds * 2^(n-1)`, capped at a day, spread by ±20 % jitter
    /// so that endpoints recovering together are not hit by a thundering herd.
    Exponential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub interval_seconds: u32,
    pub backoff: Backoff,
}

/// Why a retry policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("max_attempts must be between 1 and 100")]
    MaxAttempts,
    #[error("interval_seconds must be between 1 and 86400")]
    Interval,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::FLINKS
    }
}

impl RetryPolicy {
    /// 10 attempts in total, 30 minutes apart.
    pub const FLINKS: RetryPolicy =
        RetryPolicy { max_attempts: 10, interval_seconds: 30 * 60, backoff: Backoff::Fixed };

    pub fn validate(self) -> Result<Self, PolicyError> {
        if !(1..=100).contains(&self.max_attempts) {
            return Err(PolicyError::MaxAttempts);
        }
        if !(1..=86_400).contains(&self.interval_seconds) {
            return Err(PolicyError::Interval);
        }
        Ok(self)
    }

    /// How long to wait after failed attempt `attempt` (1-based) before the next one, or
    /// `None` when that was the last. `jitter` is a uniform sample from `[0, 1)`, passed in
    /// so that this stays deterministic under test.
    pub fn delay_after(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let base = Duration::from_secs(u64::from(self.interval_seconds));
        Some(match self.backoff {
            Backoff::Fixed => base,
            Backoff::Exponential => {
                let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
                let raw = base.saturating_mul(factor).min(MAX_DELAY);
                raw.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)).min(MAX_DELAY)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_ten_attempts_thirty_minutes_apart() {
        let policy = RetryPolicy::default();
        let delays: Vec<_> = (1..=10).map(|n| policy.delay_after(n, 0.5)).collect();
        assert!(delays[..9].iter().all(|d| *d == Some(Duration::from_secs(1800))));
        assert_eq!(delays[9], None, "the 10th attempt is the last");
    }

    #[test]
    fn exponential_doubles_within_its_jitter_and_is_capped() {
        let policy = RetryPolicy { max_attempts: 40, interval_seconds: 60, backoff: Backoff::Exponential };
        assert_eq!(policy.delay_after(1, 0.5), Some(Duration::from_secs(60)));
        assert_eq!(policy.delay_after(3, 0.5), Some(Duration::from_secs(240)));
        assert_eq!(policy.delay_after(3, 0.0), Some(Duration::from_secs(192)));
        assert_eq!(policy.delay_after(30, 0.99), Some(MAX_DELAY));
    }

    #[test]
    fn out_of_range_policies_are_refused() {
        let policy = RetryPolicy { max_attempts: 101, ..RetryPolicy::default() };
        assert_eq!(policy.validate(), Err(PolicyError::MaxAttempts));
        let policy = RetryPolicy { max_attempts: 0, ..RetryPolicy::default() };
        assert_eq!(policy.validate(), Err(PolicyError::MaxAttempts));
        let policy = RetryPolicy { interval_seconds: 0, ..RetryPolicy::default() };
        assert_eq!(policy.validate(), Err(PolicyError::Interval));
    }
}
