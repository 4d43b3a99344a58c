//! The way into the delivery worker: ingest hands over the deliveries it just committed,
//! with the payload it still holds, and the API asks for a rescan after a change the worker
//! cannot see (a redelivery, an endpoint enabled again).
//!
//! A hand-off is an optimisation, never the record: the deliveries are committed before
//! they are handed over, so when the worker's inbox is full they are simply left to the
//! worker's next look at the store (the endpoint is marked for it), and nothing is lost.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};
use tokio::sync::{mpsc, Notify};

use super::Body;
use crate::store::ScheduledDelivery;

/// How many handed-over deliveries wait for the worker at most.
const INBOX: usize = 4096;

/// A delivery committed by ingest, with the payload in hand.
#[derive(Clone)]
pub struct Fresh {
    pub delivery_id: DeliveryId,
    pub message_id: MessageId,
    pub endpoint_id: EndpointId,
    pub payload: Body,
    /// Leased to this node by the ingest until then (shared store): no claim needed.
    pub leased_until: Option<DateTime<Utc>>,
    pub sequence: Option<u64>,
}

/// Without the payload: it is a customer's financial data.
impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh")
            .field("delivery_id", &self.delivery_id)
            .field("message_id", &self.message_id)
            .field("endpoint_id", &self.endpoint_id)
            .field("payload_bytes", &self.payload.len())
            .field("leased_until", &self.leased_until)
            .finish()
    }
}

#[derive(Debug)]
struct Shared {
    sender: mpsc::Sender<Fresh>,
    /// Endpoints whose hand-offs found the inbox full.
    overflowed: Mutex<HashSet<EndpointId>>,
    /// Dropped hand-offs that ingest had leased to this node: the worker releases them
    /// before it looks at the store, or they would wait for their lease to run out.
    unclaimed: Mutex<Vec<DeliveryId>>,
    any_overflow: AtomicBool,
    rescan: AtomicBool,
    wake: Notify,
}

/// The senders' side; clone it freely.
#[derive(Debug, Clone)]
pub struct Dispatch {
    shared: Arc<Shared>,
}

/// The worker's side.
#[derive(Debug)]
pub struct Inbox {
    receiver: mpsc::Receiver<Fresh>,
    shared: Arc<Shared>,
}

impl Dispatch {
    pub fn new() -> (Self, Inbox) {
        Self::with_capacity(INBOX)
    }

    fn with_capacity(capacity: usize) -> (Self, Inbox) {
        let (sender, receiver) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            sender,
            overflowed: Mutex::default(),
            unclaimed: Mutex::default(),
            any_overflow: AtomicBool::new(false),
            rescan: AtomicBool::new(false),
            wake: Notify::new(),
        });
        (Self { shared: shared.clone() }, Inbox { receiver, shared })
    }

    /// Hands the committed deliveries of one message to the worker.
    pub fn hand_off(&self, message_id: &MessageId, payload: &Body, deliveries: &[ScheduledDelivery]) {
        for delivery in deliveries {
            let fresh = Fresh {
                delivery_id: delivery.id.clone(),
                message_id: message_id.clone(),
                endpoint_id: delivery.endpoint_id.clone(),
                payload: payload.clone(),
                leased_until: delivery.leased_until,
                sequence: delivery.sequence,
            };
            if let Err(refused) = self.shared.sender.try_send(fresh) {
                let fresh = match refused {
                    mpsc::error::TrySendError::Full(fresh) | mpsc::error::TrySendError::Closed(fresh) => fresh,
                };
                if fresh.leased_until.is_some() {
                    if let Ok(mut unclaimed) = self.shared.unclaimed.lock() {
                        unclaimed.push(fresh.delivery_id);
                    }
                }
                if let Ok(mut overflowed) = self.shared.overflowed.lock() {
                    overflowed.insert(fresh.endpoint_id);
                }
                self.shared.any_overflow.store(true, Ordering::Release);
                self.shared.wake.notify_one();
            }
        }
    }

    /// Asks the worker to look at every endpoint's due deliveries in the store.
    pub fn rescan(&self) {
        self.shared.rescan.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

impl Inbox {
    /// A handed-over delivery, if one is waiting.
    pub fn try_next(&mut self) -> Option<Fresh> {
        self.receiver.try_recv().ok()
    }

    /// Waits for a hand-off, or for a rescan or overflow to be signalled (`None`).
    pub async fn next(&mut self) -> Option<Fresh> {
        tokio::select! {
            fresh = self.receiver.recv() => fresh,
            () = self.shared.wake.notified() => None,
        }
    }

    /// Whether a rescan was asked for since the last call.
    pub fn take_rescan(&self) -> bool {
        self.shared.rescan.swap(false, Ordering::AcqRel)
    }

    /// The dropped hand-offs that ingest had leased to this node, to release.
    pub fn take_unclaimed(&self) -> Vec<DeliveryId> {
        self.shared.unclaimed.lock().map(|mut ids| std::mem::take(&mut *ids)).unwrap_or_default()
    }

    /// Everything still waiting (at shutdown): the leased ones to release.
    pub fn drain_leased(&mut self) -> Vec<DeliveryId> {
        let mut ids = self.take_unclaimed();
        while let Ok(fresh) = self.receiver.try_recv() {
            if fresh.leased_until.is_some() {
                ids.push(fresh.delivery_id);
            }
        }
        ids
    }

    /// The endpoints whose hand-offs were dropped since the last call.
    pub fn take_overflowed(&self) -> Vec<EndpointId> {
        if !self.shared.any_overflow.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        self.shared.overflowed.lock().map(|mut set| set.drain().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduled(endpoint: &EndpointId) -> ScheduledDelivery {
        ScheduledDelivery {
            id: DeliveryId::generate(),
            endpoint_id: endpoint.clone(),
            leased_until: None,
            sequence: None,
        }
    }

    #[test]
    fn a_full_inbox_marks_the_endpoint_instead_of_losing_track() {
        let (dispatch, mut inbox) = Dispatch::with_capacity(2);
        let (a, b) = (EndpointId::generate(), EndpointId::generate());
        let message = MessageId::generate();
        let payload = Body::new(bytes::Bytes::from_static(b"{}"));
        dispatch.hand_off(&message, &payload, &[scheduled(&a), scheduled(&a), scheduled(&b)]);
        assert_eq!(inbox.take_overflowed(), vec![b.clone()], "the third did not fit");
        assert!(inbox.take_overflowed().is_empty(), "reported once");
        let taken: Vec<EndpointId> = std::iter::from_fn(|| inbox.try_next()).map(|f| f.endpoint_id).collect();
        assert_eq!(taken, vec![a.clone(), a]);
        assert!(!inbox.take_rescan());
        dispatch.rescan();
        assert!(inbox.take_rescan());
        assert!(!inbox.take_rescan());
    }

    #[test]
    fn dropped_hand_offs_that_ingest_leased_are_given_back_once() {
        let (dispatch, mut inbox) = Dispatch::with_capacity(1);
        let endpoint = EndpointId::generate();
        let leased = |n: i64| ScheduledDelivery {
            id: DeliveryId::generate(),
            endpoint_id: endpoint.clone(),
            leased_until: DateTime::from_timestamp(n, 0),
            sequence: None,
        };
        let (kept, dropped) = (leased(1), leased(2));
        let unleased = scheduled(&endpoint);
        dispatch.hand_off(
            &MessageId::generate(),
            &Body::new(bytes::Bytes::from_static(b"{}")),
            &[kept.clone(), dropped.clone(), unleased],
        );
        assert_eq!(inbox.take_unclaimed(), vec![dropped.id], "only the leased one that did not fit");
        assert!(inbox.take_unclaimed().is_empty(), "given back once");
        // At shutdown, what still waits in the inbox goes back too.
        assert_eq!(inbox.drain_leased(), vec![kept.id]);
    }

    #[test]
    fn debug_never_shows_the_payload() {
        let fresh = Fresh {
            delivery_id: DeliveryId::generate(),
            message_id: MessageId::generate(),
            endpoint_id: EndpointId::generate(),
            leased_until: None,
            payload: Body::new(bytes::Bytes::from_static(b"{\"LoginId\":\"secret-login\"}")),
            sequence: Some(1),
        };
        let shown = format!("{fresh:?}");
        assert!(!shown.contains("secret-login"), "{shown}");
        assert!(shown.contains("payload_bytes: 26"), "{shown}");
    }
}
