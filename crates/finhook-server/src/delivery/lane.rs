//! One endpoint's lane: the deliveries it has queued and in flight, its copy of the
//! endpoint, and what the worker has learnt of the endpoint's health. The scheduling
//! across lanes is in [`super::lanes`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use finhook_core::ids::DeliveryId;

use super::health::Health;
use super::Body;
use crate::store::{DispatchEndpoint, DueDelivery};

/// A delivery ready to send.
pub struct Ready {
    pub due: DueDelivery,
    pub payload: Body,
    /// On a shared store: the end of this node's lease on it.
    pub lease_until: Option<DateTime<Utc>>,
}

/// An attempt to start: the delivery and the endpoint as the lane knows it.
pub struct Start {
    pub ready: Ready,
    pub endpoint: Arc<DispatchEndpoint>,
}

/// An attempt in flight.
pub(super) struct Running {
    pub started: DateTime<Utc>,
    /// Past `slow_after`: it counts against the slow budget, not a slot.
    pub slow: bool,
}

#[derive(Default)]
pub(super) struct Lane {
    pub endpoint: Option<Arc<DispatchEndpoint>>,
    /// The store's endpoints version and the instant the copy was read.
    pub loaded: Option<(u64, Instant)>,
    pub queue: VecDeque<Ready>,
    /// Queued, in flight, or waiting out the lease of an attempt that was not recorded.
    pub held: HashSet<DeliveryId>,
    pub running: HashMap<DeliveryId, Running>,
    /// Attempts of `running` past `slow_after`.
    pub slow: usize,
    /// Attempts answered, not yet recorded (held, no longer `running`).
    pub recording: usize,
    pub health: Health,
    /// Waiting for room in the slow budget.
    pub parked: bool,
    /// From when the store may hold due deliveries of this lane that it does not hold.
    pub scan_at: Option<DateTime<Utc>>,
    pub in_ring: bool,
    /// The endpoint could not be read (say, a secret that does not unseal), or its circuit
    /// is open: the lane rests until then, and every other lane goes on.
    pub resting_until: Option<DateTime<Utc>>,
}

impl Lane {
    pub fn size(&self) -> usize {
        self.queue.len() + self.running.len()
    }

    pub fn cap(&self, per_endpoint: usize) -> usize {
        self.health.cap(per_endpoint)
    }

    /// Whether the lane's next attempt would draw on the slow budget.
    pub fn struggling(&self) -> bool {
        self.slow > 0 || self.health.failing()
    }

    pub fn resting(&self, now: DateTime<Utc>) -> bool {
        self.resting_until.is_some_and(|until| until > now)
    }

    /// Forgets what the lane has queued (it stays pending in the store), noting the leases
    /// to give back so that other nodes need not wait for them to run out.
    pub fn empty_queue(&mut self, released: &mut Vec<DeliveryId>) {
        for ready in self.queue.drain(..) {
            self.held.remove(&ready.due.delivery_id);
            if ready.lease_until.is_some() {
                released.push(ready.due.delivery_id);
            }
        }
    }
}
