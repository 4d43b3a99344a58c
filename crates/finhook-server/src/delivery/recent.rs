//! Payloads the lanes used lately, shared between them: the endpoints of one callback that
//! page their deliveries in from the store get one copy of its payload, not one each, and
//! the store is read once.

use std::collections::{HashMap, VecDeque};

use finhook_core::ids::MessageId;

use super::Body;

/// At most this many bytes of payloads are kept here beyond what the lanes hold anyway.
pub const RECENT_BYTES: usize = 8 * 1024 * 1024;

/// Recently used payloads by message, oldest dropped first past a byte budget. A payload
/// never changes once stored, so a copy here is never stale.
#[derive(Debug)]
pub struct Recent {
    payloads: HashMap<MessageId, Body>,
    order: VecDeque<MessageId>,
    bytes: usize,
    budget: usize,
}

impl Recent {
    pub fn new(budget: usize) -> Self {
        Self { payloads: HashMap::new(), order: VecDeque::new(), bytes: 0, budget }
    }

    pub fn get(&self, id: &MessageId) -> Option<Body> {
        self.payloads.get(id).cloned()
    }

    /// Keeps `payload` (a cheap clone of shared bytes), dropping the oldest past the budget.
    pub fn put(&mut self, id: &MessageId, payload: &Body) {
        if payload.len() > self.budget || self.payloads.contains_key(id) {
            return;
        }
        self.payloads.insert(id.clone(), payload.clone());
        self.order.push_back(id.clone());
        self.bytes += payload.len();
        while self.bytes > self.budget {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some(dropped) = self.payloads.remove(&oldest) {
                self.bytes -= dropped.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &'static [u8]) -> Body {
        Body::new(bytes::Bytes::from_static(bytes))
    }

    #[test]
    fn the_oldest_go_first_past_the_budget_and_big_ones_are_not_kept() {
        let mut recent = Recent::new(10);
        let (a, b, c) = (MessageId::generate(), MessageId::generate(), MessageId::generate());
        recent.put(&a, &body(b"aaaa"));
        recent.put(&b, &body(b"bbbb"));
        assert_eq!(recent.get(&a).map(|body| body.bytes().clone()).as_deref(), Some(&b"aaaa"[..]));
        recent.put(&c, &body(b"cccc"));
        assert!(recent.get(&a).is_none(), "12 bytes > 10: the oldest went");
        assert!(recent.get(&b).is_some() && recent.get(&c).is_some());
        let big = MessageId::generate();
        recent.put(&big, &body(b"01234567890"));
        assert!(recent.get(&big).is_none() && recent.get(&b).is_some(), "larger than the budget: not kept");
    }
}
