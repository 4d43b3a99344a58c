//! The worker's memory: one lane per endpoint, with the deliveries ready to send, those in
//! flight, and when the store may hold more of them.
//!
//! Work enters a lane two ways: handed over by ingest with its payload (the fast path,
//! no read at all), or paged in from the store by [`Lanes::scan`] when the lane has room
//! and the store may hold due deliveries the lane does not (at start, after a retry
//! falls due, after an overflow, on the poll). Each lane holds at most `2 × per_endpoint`
//! deliveries, so memory is bounded by the number of endpoints, never by the backlog, and a
//! hanging endpoint's full lane costs nothing until it has room again.
//!
//! Lanes take turns (round robin) for the worker's free slots, and no lane has more than
//! `per_endpoint` attempts in flight: one slow endpoint cannot take every slot.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};

use super::handoff::Fresh;
use crate::store::{DispatchEndpoint, DueDelivery, Store, StoreResult};

/// How long a lane trusts its copy of the endpoint when nothing says it changed (on a
/// shared store, another node may change it without this node's store noticing).
const ENDPOINT_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// A delivery ready to send.
pub(super) struct Ready {
    pub due: DueDelivery,
    pub payload: Bytes,
    /// On a shared store: the end of this node's lease on it.
    pub lease_until: Option<DateTime<Utc>>,
}

/// An attempt to start: the delivery and the endpoint as the lane knows it.
pub(super) struct Start {
    pub ready: Ready,
    pub endpoint: Arc<DispatchEndpoint>,
}

#[derive(Default)]
struct Lane {
    endpoint: Option<Arc<DispatchEndpoint>>,
    /// The store's endpoints version and the instant the copy was read.
    loaded: Option<(u64, Instant)>,
    queue: VecDeque<Ready>,
    /// Queued, in flight, or waiting out the lease of an attempt that was not recorded.
    held: HashSet<DeliveryId>,
    in_flight: usize,
    /// From when the store may hold due deliveries of this lane that it does not hold.
    scan_at: Option<DateTime<Utc>>,
    in_ring: bool,
    /// The endpoint could not be read (say, a secret that does not unseal): the lane
    /// rests until then, and every other lane goes on.
    resting_until: Option<DateTime<Utc>>,
}

impl Lane {
    fn size(&self) -> usize {
        self.queue.len() + self.in_flight
    }
}

/// Every lane, and the order they take turns in.
pub(super) struct Lanes {
    lanes: HashMap<EndpointId, Lane>,
    /// Lanes with something queued and a free slot, in turn order (entries may be stale).
    ring: VecDeque<EndpointId>,
    /// When lanes want to be looked at again (entries may be stale).
    timers: BinaryHeap<Reverse<(DateTime<Utc>, EndpointId)>>,
    /// Unrecorded attempts, held until their lease would have run out.
    cooling: BinaryHeap<Reverse<(DateTime<Utc>, EndpointId, DeliveryId)>>,
    per_endpoint: usize,
    /// The store's endpoints version the lanes were last checked against.
    version: u64,
    pub in_flight: usize,
}

impl Lanes {
    pub fn new(per_endpoint: usize) -> Self {
        Self {
            lanes: HashMap::new(),
            ring: VecDeque::new(),
            timers: BinaryHeap::new(),
            cooling: BinaryHeap::new(),
            per_endpoint: per_endpoint.max(1),
            version: 0,
            in_flight: 0,
        }
    }

    fn depth(&self) -> usize {
        self.per_endpoint * 2
    }

    /// Marks a lane as possibly having due work in the store from `at`.
    fn want_scan(&mut self, id: &EndpointId, at: DateTime<Utc>) {
        let lane = self.lanes.entry(id.clone()).or_default();
        if lane.scan_at.is_none_or(|current| at < current) {
            lane.scan_at = Some(at);
            self.timers.push(Reverse((at, id.clone())));
        }
    }

    /// Every enabled endpoint gets a lane, and every lane looks at the store now.
    pub async fn rescan_all(&mut self, store: &dyn Store, now: DateTime<Utc>) -> StoreResult<()> {
        for id in store.enabled_endpoints().await? {
            self.lanes.entry(id).or_default();
        }
        let ids: Vec<EndpointId> = self.lanes.keys().cloned().collect();
        for id in &ids {
            self.want_scan(id, now);
        }
        Ok(())
    }

    /// If any endpoint changed, every lane rereads its endpoint and looks at the store.
    pub async fn check_version(&mut self, store: &dyn Store, now: DateTime<Utc>) -> StoreResult<()> {
        let version = store.endpoints_version();
        if version == self.version {
            return Ok(());
        }
        self.version = version;
        for lane in self.lanes.values_mut() {
            lane.loaded = None;
        }
        self.rescan_all(store, now).await
    }

    /// Makes sure the lane's copy of its endpoint is current; drops a deleted endpoint's
    /// lane and empties a disabled one's queue. Whether the lane may deliver. An endpoint
    /// that cannot be read stops its own lane for a while, never the worker.
    async fn refresh(&mut self, store: &dyn Store, id: &EndpointId, now: DateTime<Utc>) -> bool {
        let version = self.version;
        let lane = self.lanes.entry(id.clone()).or_default();
        if lane.resting_until.is_some_and(|until| until > now) {
            return false;
        }
        let fresh = lane.loaded.is_some_and(|(seen, at)| seen == version && at.elapsed() < ENDPOINT_TTL);
        if !fresh {
            let read = store.dispatch_endpoint(id, now).await;
            let lane = self.lanes.entry(id.clone()).or_default();
            match read {
                Ok(endpoint) => {
                    lane.loaded = Some((version, Instant::now()));
                    lane.endpoint = endpoint.map(Arc::new);
                    lane.resting_until = None;
                }
                Err(error) => {
                    let until = now + chrono::Duration::from_std(ENDPOINT_TTL).unwrap_or(chrono::Duration::MAX);
                    tracing::error!(
                        endpoint = %id,
                        error = %crate::http::ErrorChain(&error),
                        "could not read an endpoint for delivery; its deliveries wait and are tried again"
                    );
                    lane.loaded = None;
                    lane.endpoint = None;
                    lane.resting_until = Some(until);
                    Self::empty_queue(lane);
                    self.want_scan(id, until);
                    return false;
                }
            }
        }
        let lane = self.lanes.entry(id.clone()).or_default();
        match lane.endpoint.as_ref().map(|endpoint| endpoint.enabled) {
            Some(true) => true,
            found => {
                // Nothing queued is sent; the deliveries stay pending in the store (a
                // disabled endpoint's until it is enabled again; a deleted one's were
                // cancelled with it). Attempts in flight finish and are recorded.
                Self::empty_queue(lane);
                lane.scan_at = None;
                if found.is_none() && lane.in_flight == 0 {
                    self.lanes.remove(id);
                }
                false
            }
        }
    }

    /// Forgets what a lane has queued (it stays pending in the store).
    fn empty_queue(lane: &mut Lane) {
        for ready in lane.queue.drain(..) {
            lane.held.remove(&ready.due.delivery_id);
        }
    }

    /// Takes handed-over deliveries into their lanes, as far as the lanes have room; the
    /// rest stay in the store, and their lanes look there. Claims only what it keeps.
    pub async fn take_fresh(
        &mut self,
        store: &dyn Store,
        fresh: Vec<Fresh>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let depth = self.depth();
        let mut kept = Vec::with_capacity(fresh.len());
        let mut reserved: HashMap<EndpointId, usize> = HashMap::new();
        for item in fresh {
            if !self.refresh(store, &item.endpoint_id, now).await {
                continue;
            }
            let lane = self.lanes.entry(item.endpoint_id.clone()).or_default();
            if lane.held.contains(&item.delivery_id) {
                continue; // a scan took it first
            }
            let reserved = reserved.entry(item.endpoint_id.clone()).or_default();
            if lane.size() + *reserved >= depth {
                self.want_scan(&item.endpoint_id, now);
                continue;
            }
            *reserved += 1;
            kept.push(item);
        }
        if kept.is_empty() {
            return Ok(());
        }
        let ids: Vec<DeliveryId> = kept.iter().map(|f| f.delivery_id.clone()).collect();
        let granted: HashSet<DeliveryId> = store.claim(&ids, now, lease_until).await?.into_iter().collect();
        let lease = store.claims_are_leases().then_some(lease_until);
        for item in kept {
            if !granted.contains(&item.delivery_id) {
                continue; // another node took it, or it is no longer pending
            }
            let lane = self.lanes.entry(item.endpoint_id.clone()).or_default();
            lane.held.insert(item.delivery_id.clone());
            let due = DueDelivery {
                delivery_id: item.delivery_id,
                message_id: item.message_id,
                endpoint_id: item.endpoint_id.clone(),
                attempt_number: 1,
            };
            lane.queue.push_back(Ready { due, payload: item.payload, lease_until: lease });
            self.enqueue(&item.endpoint_id);
        }
        Ok(())
    }

    /// Marks lanes whose hand-offs were dropped.
    pub fn overflowed(&mut self, ids: Vec<EndpointId>, now: DateTime<Utc>) {
        for id in ids {
            self.want_scan(&id, now);
        }
    }

    /// Puts a lane in the turn order if it has something to send and a free slot.
    fn enqueue(&mut self, id: &EndpointId) {
        let per_endpoint = self.per_endpoint;
        if let Some(lane) = self.lanes.get_mut(id) {
            if !lane.in_ring && !lane.queue.is_empty() && lane.in_flight < per_endpoint {
                lane.in_ring = true;
                self.ring.push_back(id.clone());
            }
        }
    }

    /// When the next lane wants a look at the store, or an unrecorded attempt's hold ends.
    pub fn next_timer(&self) -> Option<DateTime<Utc>> {
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let cooling = self.cooling.peek().map(|Reverse((at, _, _))| *at);
        match (timer, cooling) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Looks in the store for every lane whose time has come and which has room.
    pub async fn scan_due(
        &mut self,
        store: &dyn Store,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        while let Some(Reverse((at, _, _))) = self.cooling.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, endpoint, delivery))) = self.cooling.pop() else { break };
            if let Some(lane) = self.lanes.get_mut(&endpoint) {
                lane.held.remove(&delivery);
            }
        }
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = self.timers.pop() else { break };
            due.push(id);
        }
        due.dedup();
        for id in due {
            self.scan(store, &id, now, lease_until).await?;
        }
        Ok(())
    }

    /// Pages a lane's due deliveries in from the store, as many as it has room for.
    async fn scan(
        &mut self,
        store: &dyn Store,
        id: &EndpointId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let Some(lane) = self.lanes.get(id) else { return Ok(()) };
        if lane.scan_at.is_none_or(|at| at > now) {
            return Ok(()); // a stale timer
        }
        if !self.refresh(store, id, now).await {
            return Ok(());
        }
        let depth = self.depth();
        let Some(lane) = self.lanes.get_mut(id) else { return Ok(()) };
        let room = depth.saturating_sub(lane.size());
        if room == 0 {
            return Ok(()); // looked at again when an attempt finishes
        }
        let take = u32::try_from(room).unwrap_or(u32::MAX);
        let held = u32::try_from(lane.held.len()).unwrap_or(u32::MAX);
        let taken = store.take_due(id, now, lease_until, take, held).await?;
        let lane = self.lanes.entry(id.clone()).or_default();
        let new: Vec<DueDelivery> =
            taken.due.into_iter().filter(|due| !lane.held.contains(&due.delivery_id)).take(room).collect();
        lane.scan_at = None;
        let next = if taken.more { Some(now) } else { taken.next_due_at };
        let message_ids: Vec<MessageId> = {
            let mut ids: Vec<MessageId> = new.iter().map(|due| due.message_id.clone()).collect();
            ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            ids.dedup();
            ids
        };
        let payloads: HashMap<MessageId, Bytes> = if message_ids.is_empty() {
            HashMap::new()
        } else {
            store.payloads(&message_ids).await?.into_iter().collect()
        };
        let lease = store.claims_are_leases().then_some(lease_until);
        let lane = self.lanes.entry(id.clone()).or_default();
        for due in new {
            let Some(payload) = payloads.get(&due.message_id) else {
                tracing::error!(delivery = %due.delivery_id, message = %due.message_id, "a pending delivery's message is gone; skipped");
                continue;
            };
            lane.held.insert(due.delivery_id.clone());
            lane.queue.push_back(Ready { due, payload: payload.clone(), lease_until: lease });
        }
        if let Some(at) = next {
            self.want_scan(id, at);
        }
        self.enqueue(id);
        Ok(())
    }

    /// The next attempt to start, taking lanes in turn, if a lane has one and a free slot.
    /// `timeout` is the attempt's longest run: a leased delivery whose lease would end
    /// before the attempt does is left for the store to hand out again.
    pub async fn next_start(
        &mut self,
        store: &dyn Store,
        now: DateTime<Utc>,
        timeout: chrono::Duration,
    ) -> Option<Start> {
        while let Some(id) = self.ring.pop_front() {
            let Some(lane) = self.lanes.get_mut(&id) else { continue };
            lane.in_ring = false;
            if lane.queue.is_empty() || lane.in_flight >= self.per_endpoint {
                continue;
            }
            if !self.refresh(store, &id, now).await {
                continue;
            }
            let Some(lane) = self.lanes.get_mut(&id) else { continue };
            let Some(ready) = lane.queue.pop_front() else { continue };
            if let Some(lease) = ready.lease_until.filter(|lease| now + timeout > *lease) {
                lane.held.remove(&ready.due.delivery_id);
                self.want_scan(&id, lease);
                self.enqueue(&id);
                continue;
            }
            let Some(endpoint) = lane.endpoint.clone() else { continue };
            lane.in_flight += 1;
            self.in_flight += 1;
            self.enqueue(&id);
            return Some(Start { ready, endpoint });
        }
        None
    }

    /// Empties every lane's queue (not what is in flight) and returns the deliveries that
    /// were queued under a lease, for the store to release at shutdown.
    pub fn drain_leased(&mut self) -> Vec<DeliveryId> {
        let mut leased = Vec::new();
        for lane in self.lanes.values_mut() {
            lane.in_ring = false;
            for ready in lane.queue.drain(..) {
                lane.held.remove(&ready.due.delivery_id);
                if ready.lease_until.is_some() {
                    leased.push(ready.due.delivery_id);
                }
            }
        }
        self.ring.clear();
        leased
    }

    /// An attempt finished. `recorded`: the store has it, with the delivery's next due
    /// time; `None` if the record failed, and the delivery is held until `hold_until`
    /// (when a lease would have run out) so that it is not sent again at once.
    pub fn finished(
        &mut self,
        endpoint: &EndpointId,
        delivery: &DeliveryId,
        recorded: Option<Option<DateTime<Utc>>>,
        now: DateTime<Utc>,
        hold_until: DateTime<Utc>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(lane) = self.lanes.get_mut(endpoint) else { return };
        lane.in_flight = lane.in_flight.saturating_sub(1);
        match recorded {
            Some(next) => {
                lane.held.remove(delivery);
                if let Some(at) = next {
                    self.want_scan(endpoint, at);
                }
            }
            None => {
                self.cooling.push(Reverse((hold_until, endpoint.clone(), delivery.clone())));
                self.want_scan(endpoint, hold_until);
            }
        }
        if let Some(lane) = self.lanes.get(endpoint) {
            // A lane that could not look at the store for want of room looks now.
            if lane.scan_at.is_some_and(|at| at <= now) {
                self.timers.push(Reverse((now, endpoint.clone())));
            }
            if lane.endpoint.is_none() && lane.in_flight == 0 {
                self.lanes.remove(endpoint);
                return;
            }
        }
        self.enqueue(endpoint);
    }
}
