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
//! Lanes take turns (round robin) for the worker's free slots. What keeps endpoints that
//! hang from starving the others, however many there are:
//!
//! - **An adaptive cap per lane and a circuit breaker** ([`super::health`]): an endpoint
//!   that does not answer soon has one attempt in flight, and after a few failures in a
//!   row none for a while.
//! - **Slow attempts leave their slot.** An attempt still running after `slow_after` gives
//!   its slot back and counts against a second budget of the same size. A lane with a slow
//!   attempt, or whose last attempt found its endpoint unreachable, starts another only
//!   while that budget has room: slow endpoints share it among themselves, and the slots
//!   stay with endpoints that answer.

mod outcome;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};

use super::handoff::Fresh;
use super::lane::{Lane, Running};
pub(super) use super::lane::{Ready, Start};
use super::recent::{Recent, RECENT_BYTES};
use super::Body;
use crate::store::{DueDelivery, Store, StoreResult};

/// How long a lane trusts its copy of the endpoint when nothing says it changed (on a
/// shared store, another node may change it without this node's store noticing).
const ENDPOINT_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Records waiting for their commit, per slot: past `concurrency` times this, no attempt
/// starts, so a store that cannot commit stops the sending within a bound (each attempt
/// whose record is lost is made again later). Under load a group commit takes tens of
/// milliseconds, so records need more room than attempts: over 100 endpoints, two per slot
/// delivered 15 % less than four, and eight no more than four (docs/BENCHMARKS.md).
const RECORDS_PER_SLOT: usize = 4;

/// A lane that has just paused, for the worker to report.
#[derive(Debug)]
pub(super) struct Paused {
    pub endpoint: EndpointId,
    pub until: DateTime<Utc>,
}

/// When an attempt becomes slow: `(when, endpoint, delivery, when it started)`.
type Stall = (DateTime<Utc>, EndpointId, DeliveryId, DateTime<Utc>);

/// Every lane, and the order they take turns in.
pub(super) struct Lanes {
    lanes: HashMap<EndpointId, Lane>,
    /// Lanes with something queued and a free slot, in turn order (entries may be stale).
    ring: VecDeque<EndpointId>,
    /// When lanes want to be looked at again (entries may be stale).
    timers: BinaryHeap<Reverse<(DateTime<Utc>, EndpointId)>>,
    /// Unrecorded attempts, held until their lease would have run out.
    cooling: BinaryHeap<Reverse<(DateTime<Utc>, EndpointId, DeliveryId)>>,
    /// When attempts in flight become slow: `(when, endpoint, delivery, started)`.
    stalls: BinaryHeap<Reverse<Stall>>,
    /// Struggling lanes waiting for room in the slow budget, in turn order.
    parked: VecDeque<EndpointId>,
    /// Leased deliveries dropped from queues, whose leases are to be given back.
    released: Vec<DeliveryId>,
    per_endpoint: usize,
    /// Slots: attempts in their first `slow_after`; and, as many again, slow attempts.
    concurrency: usize,
    slow_after: chrono::Duration,
    /// The store's endpoints version the lanes were last checked against.
    version: u64,
    /// Attempts holding a slot.
    busy: usize,
    /// Attempts past `slow_after`.
    slow: usize,
    /// Attempts answered (or given up on) whose records the store has not yet confirmed.
    recording: usize,
    /// Looks in the store for a lane's due deliveries, not yet counted in the metrics.
    scans: u64,
    /// Payloads of hand-offs that did not fit and of looks, shared between lanes.
    recent: Recent,
}

impl Lanes {
    pub fn new(concurrency: usize, per_endpoint: usize, slow_after: std::time::Duration) -> Self {
        Self {
            lanes: HashMap::new(),
            ring: VecDeque::new(),
            timers: BinaryHeap::new(),
            cooling: BinaryHeap::new(),
            stalls: BinaryHeap::new(),
            parked: VecDeque::new(),
            released: Vec::new(),
            per_endpoint: per_endpoint.max(1),
            concurrency: concurrency.max(1),
            slow_after: chrono::Duration::from_std(slow_after).unwrap_or(chrono::Duration::MAX),
            version: 0,
            busy: 0,
            slow: 0,
            recording: 0,
            scans: 0,
            recent: Recent::new(RECENT_BYTES),
        }
    }

    /// How many times lanes looked in the store since the last call.
    pub fn take_scans(&mut self) -> u64 {
        std::mem::take(&mut self.scans)
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

    /// Makes a lane rest until `until`, forgetting what it has queued; it looks at the
    /// store again then.
    fn rest(&mut self, id: &EndpointId, until: DateTime<Utc>) {
        let lane = self.lanes.entry(id.clone()).or_default();
        lane.resting_until = Some(until);
        lane.empty_queue(&mut self.released);
        lane.scan_at = Some(until);
        self.timers.push(Reverse((until, id.clone())));
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
        // A paused endpoint whose URL changed (its owner fixed it) is tried again now.
        let paused: Vec<EndpointId> =
            self.lanes.iter().filter(|(_, lane)| lane.health.paused(now)).map(|(id, _)| id.clone()).collect();
        for id in paused {
            let read = store.dispatch_endpoint(&id, now).await?;
            let Some(lane) = self.lanes.get_mut(&id) else { continue };
            let moved = match (&read, &lane.endpoint) {
                (Some(new), Some(old)) => new.url != old.url,
                _ => false,
            };
            if moved {
                lane.resting_until = None;
                lane.health.forget();
            }
        }
        self.rescan_all(store, now).await
    }

    /// Makes sure the lane's copy of its endpoint is current; drops a deleted endpoint's
    /// lane and empties a disabled one's queue. Whether the lane may deliver. An endpoint
    /// that cannot be read stops its own lane for a while, never the worker.
    async fn refresh(&mut self, store: &dyn Store, id: &EndpointId, now: DateTime<Utc>) -> bool {
        let version = self.version;
        let lane = self.lanes.entry(id.clone()).or_default();
        if lane.resting(now) {
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
                    self.rest(id, until);
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
                lane.empty_queue(&mut self.released);
                lane.scan_at = None;
                if found.is_none() && lane.running.is_empty() {
                    self.lanes.remove(id);
                }
                false
            }
        }
    }

    /// The leases of deliveries dropped from queues since the last call, for the store to
    /// release.
    pub fn take_released(&mut self) -> Vec<DeliveryId> {
        std::mem::take(&mut self.released)
    }

    /// Takes handed-over deliveries into their lanes, as far as the lanes have room; the
    /// rest stay in the store, and their lanes look there. Claims only what it keeps and
    /// ingest did not already lease to this node, and releases what ingest leased and it
    /// does not keep. Returns how many did not fit in their lanes.
    pub async fn take_fresh(
        &mut self,
        store: &dyn Store,
        fresh: Vec<Fresh>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<usize> {
        let depth = self.depth();
        let mut spilled = 0;
        let mut kept = Vec::with_capacity(fresh.len());
        let mut reserved: HashMap<EndpointId, usize> = HashMap::new();
        // Leased to this node by their ingest but not kept: given back at once, so that
        // the scan of their lane finds them.
        let mut give_back = Vec::new();
        for item in fresh {
            if !self.refresh(store, &item.endpoint_id, now).await {
                give_back.extend(item.leased_until.map(|_| item.delivery_id));
                continue;
            }
            let lane = self.lanes.entry(item.endpoint_id.clone()).or_default();
            if lane.held.contains(&item.delivery_id) {
                continue; // a scan took it first
            }
            // One at a time per LoginId: an ordered lane's scan takes it once it is the first
            // of its LoginId still waiting (not a spill: leasing stays as it is).
            let ordered = lane.endpoint.as_ref().is_some_and(|e| e.ordering == crate::store::DeliveryOrder::LoginId);
            let reserved = reserved.entry(item.endpoint_id.clone()).or_default();
            let full = lane.size() + *reserved >= depth;
            if ordered || full {
                // Looked up in the store later; its payload is kept here for that.
                self.recent.put(&item.message_id, &item.payload);
                self.want_scan(&item.endpoint_id, now);
                give_back.extend(item.leased_until.map(|_| item.delivery_id));
                spilled += usize::from(!ordered);
                continue;
            }
            *reserved += 1;
            kept.push(item);
        }
        store.release(&give_back).await?;
        if kept.is_empty() {
            return Ok(spilled);
        }
        // Those ingest leased to this node are ours already; the others are claimed.
        let ids: Vec<DeliveryId> =
            kept.iter().filter(|f| f.leased_until.is_none()).map(|f| f.delivery_id.clone()).collect();
        let granted: HashSet<DeliveryId> = store.claim(&ids, now, lease_until).await?.into_iter().collect();
        for item in kept {
            let lease = match item.leased_until {
                Some(until) => Some(until),
                None if granted.contains(&item.delivery_id) => store.claims_are_leases().then_some(lease_until),
                None => continue, // another node took it, or it is no longer pending
            };
            let lane = self.lanes.entry(item.endpoint_id.clone()).or_default();
            lane.held.insert(item.delivery_id.clone());
            let due = DueDelivery {
                delivery_id: item.delivery_id,
                message_id: item.message_id,
                endpoint_id: item.endpoint_id.clone(),
                attempt_number: 1,
                sequence: item.sequence,
            };
            lane.queue.push_back(Ready { due, payload: item.payload, lease_until: lease });
            self.enqueue(&item.endpoint_id);
        }
        Ok(spilled)
    }

    /// Marks lanes whose hand-offs were dropped.
    pub fn overflowed(&mut self, ids: Vec<EndpointId>, now: DateTime<Utc>) {
        for id in ids {
            self.want_scan(&id, now);
        }
    }

    /// Puts a lane in the turn order if it has something to send and room under its cap.
    fn enqueue(&mut self, id: &EndpointId) {
        let per_endpoint = self.per_endpoint;
        if let Some(lane) = self.lanes.get_mut(id) {
            if !lane.in_ring && !lane.parked && !lane.queue.is_empty() && lane.running.len() < lane.cap(per_endpoint) {
                lane.in_ring = true;
                self.ring.push_back(id.clone());
            }
        }
    }

    /// When the next lane wants a look at the store, an unrecorded attempt's hold ends, or
    /// an attempt in flight becomes slow.
    pub fn next_timer(&self) -> Option<DateTime<Utc>> {
        let timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let cooling = self.cooling.peek().map(|Reverse((at, _, _))| *at);
        let stall = self.stalls.peek().map(|Reverse((at, _, _, _))| *at);
        [timer, cooling, stall].into_iter().flatten().min()
    }

    /// Moves the attempts running for `slow_after` out of their slots into the slow budget.
    fn note_stalls(&mut self, now: DateTime<Utc>) {
        while let Some(Reverse((at, _, _, _))) = self.stalls.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, endpoint, delivery, started))) = self.stalls.pop() else { break };
            let Some(lane) = self.lanes.get_mut(&endpoint) else { continue };
            let Some(running) = lane.running.get_mut(&delivery) else { continue };
            if running.slow || running.started != started {
                continue; // finished, and this is a later attempt of the same delivery
            }
            running.slow = true;
            lane.slow += 1;
            self.busy = self.busy.saturating_sub(1);
            self.slow += 1;
        }
    }

    /// Looks in the store for every lane whose time has come and which has room.
    pub async fn scan_due(
        &mut self,
        store: &dyn Store,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.note_stalls(now);
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
            if let Some(until) = self.lanes.get(id).and_then(|lane| lane.resting_until).filter(|until| *until > now) {
                // Resting: looks again when the rest ends, whatever timer brought it here.
                if let Some(lane) = self.lanes.get_mut(id) {
                    lane.scan_at = Some(until);
                }
                self.timers.push(Reverse((until, id.clone())));
            }
            return Ok(());
        }
        let depth = self.depth();
        let Some(lane) = self.lanes.get_mut(id) else { return Ok(()) };
        let room = depth.saturating_sub(lane.size());
        // A lane refills once it has drained to half (it is looked at again as attempts
        // finish): each look then takes at least half a lane. Looking whenever one slot
        // was free took one delivery per look, and a look on the embedded store also
        // reads the rows the lane holds, so an overloaded node read about a lane's depth
        // of rows per delivery and slowed down as it fell behind.
        if room < depth.div_ceil(2) {
            return Ok(());
        }
        let take = u32::try_from(room).unwrap_or(u32::MAX);
        let held = u32::try_from(lane.held.len()).unwrap_or(u32::MAX);
        self.scans += 1;
        // As the hand-offs above see it: a change of ordering on another node is seen within
        // ENDPOINT_TTL, here and there alike.
        let ordered = lane.endpoint.as_ref().is_some_and(|e| e.ordering == crate::store::DeliveryOrder::LoginId);
        let taken = store.take_due(id, now, lease_until, take, held, ordered).await?;
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
        // Payloads another lane paged in lately are shared, not read and copied again.
        let mut payloads: HashMap<MessageId, Body> = HashMap::with_capacity(message_ids.len());
        let mut missing = Vec::new();
        for id in message_ids {
            match self.recent.get(&id) {
                Some(payload) => drop(payloads.insert(id, payload)),
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            for (id, payload) in store.payloads(&missing).await? {
                let payload = Body::hashed(payload.bytes, &payload.sha256);
                self.recent.put(&id, &payload);
                payloads.insert(id, payload);
            }
        }
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

    /// The next attempt to start, taking lanes in turn, if a slot is free and a lane has
    /// one it may start. `timeout` is the attempt's longest run: a leased delivery whose
    /// lease would end before the attempt does is left for the store to hand out again.
    pub async fn next_start(
        &mut self,
        store: &dyn Store,
        now: DateTime<Utc>,
        timeout: chrono::Duration,
    ) -> Option<Start> {
        while self.busy < self.concurrency && self.recording < self.concurrency * RECORDS_PER_SLOT {
            let id = self.ring.pop_front()?;
            let per_endpoint = self.per_endpoint;
            let slow_budget_full = self.slow >= self.concurrency;
            let Some(lane) = self.lanes.get_mut(&id) else { continue };
            lane.in_ring = false;
            if lane.queue.is_empty() || lane.running.len() >= lane.cap(per_endpoint) {
                continue;
            }
            if lane.struggling() && slow_budget_full {
                lane.parked = true;
                self.parked.push_back(id);
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
            lane.running.insert(ready.due.delivery_id.clone(), Running { started: now, slow: false });
            self.stalls.push(Reverse((
                now.checked_add_signed(self.slow_after).unwrap_or(DateTime::<Utc>::MAX_UTC),
                id.clone(),
                ready.due.delivery_id.clone(),
                now,
            )));
            self.busy += 1;
            self.enqueue(&id);
            return Some(Start { ready, endpoint });
        }
        None
    }

    /// Empties every lane's queue (not what is in flight) and returns the deliveries that
    /// were queued under a lease, for the store to release at shutdown.
    pub fn drain_leased(&mut self) -> Vec<DeliveryId> {
        for lane in self.lanes.values_mut() {
            lane.in_ring = false;
            lane.parked = false;
            lane.empty_queue(&mut self.released);
        }
        self.ring.clear();
        self.parked.clear();
        self.take_released()
    }

    /// A slow attempt ended: the first parked lane that can use its room takes its turn.
    fn unpark_one(&mut self) {
        while let Some(id) = self.parked.pop_front() {
            let Some(lane) = self.lanes.get_mut(&id) else { continue };
            lane.parked = false;
            self.enqueue(&id);
            if self.lanes.get(&id).is_some_and(|lane| lane.in_ring) {
                return;
            }
        }
    }
}
