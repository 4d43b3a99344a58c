//! Time as a dependency: the system clock in production, a hand-driven clock in tests, so
//! that a 10 × 30 minute retry schedule runs in milliseconds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

/// A wait on a [`Clock`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once `duration` has passed on this clock.
    fn sleep(&self, duration: std::time::Duration) -> Sleep;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: std::time::Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that only moves when told to. Clones share the same time; a [`Clock::sleep`]
/// on it ends when the clock is advanced past its deadline, never by itself.
#[derive(Debug, Clone)]
pub struct ManualClock {
    millis: Arc<watch::Sender<i64>>,
}

impl ManualClock {
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self { millis: Arc::new(watch::Sender::new(start.timestamp_millis())) }
    }

    pub fn advance(&self, by: Duration) {
        self.millis.send_modify(|now| *now += by.num_milliseconds());
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(*self.millis.borrow()).unwrap_or_default()
    }

    fn sleep(&self, duration: std::time::Duration) -> Sleep {
        let deadline = self.millis.borrow().saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
        let mut time = self.millis.subscribe();
        Box::pin(async move {
            // Ends with the clock's last clone too: nothing could advance it any more.
            let _ = time.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleep_ends_when_the_clock_passes_its_deadline() {
        let clock = ManualClock::starting_at(DateTime::UNIX_EPOCH);
        let mut sleep = clock.sleep(std::time::Duration::from_millis(20));
        assert!(futures_poll(&mut sleep).is_pending());
        clock.advance(Duration::milliseconds(19));
        assert!(futures_poll(&mut sleep).is_pending());
        clock.advance(Duration::milliseconds(1));
        sleep.await;
    }

    fn futures_poll(sleep: &mut Sleep) -> std::task::Poll<()> {
        let waker = std::task::Waker::noop();
        sleep.as_mut().poll(&mut std::task::Context::from_waker(waker))
    }
}
