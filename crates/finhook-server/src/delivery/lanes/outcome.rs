//! How an attempt leaves the lanes, in two steps: its exchange with the endpoint ends
//! ([`Lanes::answered`]: the slot is free, the lane learns from the answer), then the store
//! confirms its record ([`Lanes::recorded`]: the delivery may be taken again).
//!
//! A slot limits what an endpoint and the outbound connections carry, and an answered
//! attempt carries nothing any more. Holding the slot until the record was committed made
//! every slot wait out a group commit per delivery: with 128 slots and 100 endpoints the
//! machine idled a quarter of the time while deliveries queued (docs/BENCHMARKS.md,
//! "Slots end with the answer"). Until recorded, the delivery stays `held`, so no look in
//! the store takes it again; records awaiting their commit are bounded
//! ([`super::RECORDS_PER_SLOT`]).

use std::cmp::Reverse;

use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId};

use super::{Lanes, Paused};
use crate::delivery::health::Reach;

impl Lanes {
    /// An attempt's exchange ended (an answer, an error or a timeout): its slot is free
    /// and `reach` adjusts the lane's cap and circuit. A lane that pauses is returned. The
    /// delivery stays held until [`Lanes::recorded`].
    pub fn answered(
        &mut self,
        endpoint: &EndpointId,
        delivery: &DeliveryId,
        reach: Reach,
        now: DateTime<Utc>,
    ) -> Option<Paused> {
        self.recording += 1;
        let was_slow = self
            .lanes
            .get_mut(endpoint)
            .and_then(|lane| {
                lane.recording += 1;
                lane.running.remove(delivery)
            })
            .is_some_and(|running| running.slow);
        if was_slow {
            self.slow = self.slow.saturating_sub(1);
            if let Some(lane) = self.lanes.get_mut(endpoint) {
                lane.slow = lane.slow.saturating_sub(1);
            }
            self.unpark_one();
        } else {
            self.busy = self.busy.saturating_sub(1);
        }
        let per_endpoint = self.per_endpoint;
        let lane = self.lanes.get_mut(endpoint)?;
        let paused =
            lane.health.learn(reach, per_endpoint, now).map(|until| Paused { endpoint: endpoint.clone(), until });
        if let Some(pause) = &paused {
            self.rest(endpoint, pause.until);
        }
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            if lane.parked && !lane.struggling() {
                lane.parked = false; // its entry in the parked queue is skipped
            }
            // A lane that could not look at the store for want of room looks now.
            if lane.scan_at.is_some_and(|at| at <= now) {
                self.timers.push(Reverse((now, endpoint.clone())));
            }
        }
        self.enqueue(endpoint);
        paused
    }

    /// The store answered an answered attempt's record. `recorded`: the store has it, with
    /// the delivery's next due time; `None` if the record failed, and the delivery is held
    /// until `hold_until` (when a lease would have run out) so that it is not sent again at
    /// once.
    pub fn recorded(
        &mut self,
        endpoint: &EndpointId,
        delivery: &DeliveryId,
        recorded: Option<Option<DateTime<Utc>>>,
        now: DateTime<Utc>,
        hold_until: DateTime<Utc>,
    ) {
        self.recording = self.recording.saturating_sub(1);
        let Some(lane) = self.lanes.get_mut(endpoint) else { return };
        lane.recording = lane.recording.saturating_sub(1);
        let ordered = lane.endpoint.as_ref().is_some_and(|e| e.ordering == crate::store::DeliveryOrder::LoginId);
        match recorded {
            Some(next) => {
                lane.held.remove(delivery);
                if let Some(at) = next {
                    self.want_scan(endpoint, at);
                }
                if ordered {
                    // Its LoginId's next callback may go now (or, after a failure, waits).
                    self.want_scan(endpoint, now);
                }
            }
            None => {
                self.cooling.push(Reverse((hold_until, endpoint.clone(), delivery.clone())));
                self.want_scan(endpoint, hold_until);
            }
        }
        if let Some(lane) = self.lanes.get_mut(endpoint) {
            if lane.endpoint.is_none() && lane.running.is_empty() && lane.recording == 0 {
                self.lanes.remove(endpoint);
                return;
            }
        }
        self.enqueue(endpoint);
    }
}
