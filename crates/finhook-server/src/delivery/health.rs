//! What the worker has learnt of one endpoint's health: its adaptive cap on attempts in
//! flight and its circuit breaker. Pure state, no IO, so the rules are tested on their own.
//!
//! - The cap starts at one attempt, gains one with each answer (any HTTP status: the
//!   endpoint is there) up to the per-endpoint limit, and halves whenever an attempt finds
//!   the endpoint unreachable. A hanging endpoint soon holds one attempt at a time.
//! - After [`BREAK_AFTER`] unreachable attempts in a row the circuit opens: the endpoint's
//!   deliveries wait in the store, unattempted, for [`FIRST_PAUSE`], doubling with each
//!   pause in a row up to [`LONGEST_PAUSE`]; then one attempt probes it. An answer closes
//!   the circuit; another failure opens it again at once.

use chrono::{DateTime, Utc};

/// Unreachable attempts in a row that open the circuit.
pub const BREAK_AFTER: u32 = 5;
/// The first pause of an endpoint that cannot be reached.
pub const FIRST_PAUSE: chrono::Duration = chrono::Duration::seconds(30);
/// The longest pause, however many came before it.
pub const LONGEST_PAUSE: chrono::Duration = chrono::Duration::minutes(10);

/// What an attempt learnt about its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// An HTTP answer came, whatever its status.
    Answered,
    /// No answer: a timeout, or a connection that could not be made or broke.
    Unreachable,
    /// Nothing about the endpoint's health (a refused address, a name or certificate
    /// problem, a signing problem).
    Unknown,
}

/// One endpoint's health, as its lane keeps it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Health {
    /// The cap is `1 + grown`, at most the per-endpoint limit.
    grown: usize,
    /// Attempts in a row that found the endpoint unreachable.
    pub unreachable_in_row: u32,
    /// Pauses in a row (the circuit opened again after its probe failed).
    pauses: u32,
    /// While the circuit is open: when it half-opens for a probe.
    pub paused_until: Option<DateTime<Utc>>,
}

impl Health {
    /// Attempts this endpoint may have in flight.
    pub fn cap(&self, per_endpoint: usize) -> usize {
        (1 + self.grown).min(per_endpoint.max(1))
    }

    /// Whether the last attempt found the endpoint unreachable.
    pub fn failing(&self) -> bool {
        self.unreachable_in_row > 0
    }

    pub fn paused(&self, now: DateTime<Utc>) -> bool {
        self.paused_until.is_some_and(|until| until > now)
    }

    /// Takes in an attempt's outcome; returns the end of the pause if the circuit opens.
    /// Attempts that were in flight when it opened change nothing more.
    pub fn learn(&mut self, reach: Reach, per_endpoint: usize, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match reach {
            Reach::Answered => {
                self.grown = (self.grown + 1).min(per_endpoint.max(1) - 1);
                self.unreachable_in_row = 0;
                self.pauses = 0;
                self.paused_until = None;
                None
            }
            Reach::Unreachable if !self.paused(now) => {
                self.grown = (self.cap(per_endpoint) / 2).saturating_sub(1);
                self.unreachable_in_row += 1;
                if self.unreachable_in_row < BREAK_AFTER {
                    return None;
                }
                let until = now + pause_after(self.pauses);
                self.pauses += 1;
                // The one probe after the pause opens the circuit again if it fails too.
                self.unreachable_in_row = BREAK_AFTER - 1;
                self.paused_until = Some(until);
                Some(until)
            }
            Reach::Unreachable | Reach::Unknown => None,
        }
    }

    /// The endpoint changed (its owner gave it a new URL): everything learnt is forgotten.
    pub fn forget(&mut self) {
        *self = Self::default();
    }
}

/// The pause after `pauses` pauses in a row: [`FIRST_PAUSE`], doubling, at most
/// [`LONGEST_PAUSE`].
fn pause_after(pauses: u32) -> chrono::Duration {
    let factor = 1_i32.checked_shl(pauses.min(16)).unwrap_or(i32::MAX);
    FIRST_PAUSE.checked_mul(factor).map_or(LONGEST_PAUSE, |pause| pause.min(LONGEST_PAUSE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_773_511_200 + seconds, 0).expect("time")
    }

    #[test]
    fn the_cap_grows_by_one_per_answer_and_halves_when_unreachable() {
        let mut health = Health::default();
        assert_eq!(health.cap(32), 1, "a new endpoint starts with one attempt");
        for _ in 0..40 {
            health.learn(Reach::Answered, 32, t(0));
        }
        assert_eq!(health.cap(32), 32, "no more than the per-endpoint limit");
        let caps: Vec<usize> = (0..4)
            .map(|_| {
                health.learn(Reach::Unreachable, 32, t(0));
                health.cap(32)
            })
            .collect();
        assert_eq!(caps, [16, 8, 4, 2]);
        health.learn(Reach::Unknown, 32, t(0));
        assert_eq!(health.cap(32), 2, "a certificate or name problem says nothing of the load");
        assert_eq!(Health::default().cap(0), 1, "at least one attempt whatever the setting");
    }

    #[test]
    fn five_unreachable_in_a_row_pause_for_30_s_then_60_s_then_up_to_10_minutes() {
        let mut health = Health::default();
        let opened: Vec<Option<DateTime<Utc>>> = (0..5).map(|_| health.learn(Reach::Unreachable, 32, t(0))).collect();
        assert_eq!(opened, [None, None, None, None, Some(t(30))]);
        assert!(health.paused(t(29)) && !health.paused(t(30)));
        assert_eq!(health.learn(Reach::Unreachable, 32, t(10)), None, "attempts in flight at the break");
        let mut pauses = Vec::new();
        let mut now = t(30);
        for _ in 0..7 {
            let until = health.learn(Reach::Unreachable, 32, now).expect("the failed probe opens the circuit");
            pauses.push((until - now).num_seconds());
            now = until;
        }
        assert_eq!(pauses, [60, 120, 240, 480, 600, 600, 600]);
        assert_eq!(health.learn(Reach::Answered, 32, now), None);
        assert!(!health.failing() && health.paused_until.is_none());
        let opened: Vec<bool> = (0..5).map(|_| health.learn(Reach::Unreachable, 32, now).is_some()).collect();
        assert_eq!(opened, [false, false, false, false, true], "an answer starts the count and the pauses over");
        assert_eq!(
            health.learn(Reach::Unreachable, 32, now + FIRST_PAUSE).map(|until| until - now),
            Some(FIRST_PAUSE * 3)
        );
    }
}
