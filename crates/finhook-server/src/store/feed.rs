//! The catch-up feed in the store: an instance's callbacks in a stable order behind a
//! cursor, for a receiver that was down to pull what it missed, and its acknowledgements,
//! which mark their deliveries delivered.
//!
//! The order is the message id's (time first). A message whose id sorts before one already
//! read could still commit a moment later (ids are taken at ingest, before the commit; two
//! nodes' clocks differ), and a cursor past it would skip it. So the feed shows only
//! messages older than [`SETTLE`]: by then every callback that could sort before them has
//! committed or failed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{EndpointId, MessageId};

use super::{InstanceId, StoreResult};

/// How far the feed trails the present.
pub const SETTLE: chrono::Duration = chrono::Duration::seconds(5);

/// The most messages one page holds.
pub const MAX_FEED: u32 = 100;

/// How many of the instance's messages one page looks at, at most.
pub const FEED_WINDOW: u32 = 1_000;

/// Which callbacks a page holds.
#[derive(Debug, Clone)]
pub struct FeedQuery {
    /// After this message (from the beginning when `None`).
    pub after: Option<MessageId>,
    /// Only messages with a delivery still pending or failed (superseded ones aside).
    pub undelivered: bool,
    /// With `undelivered`: only messages undelivered at this endpoint.
    pub endpoint: Option<EndpointId>,
    pub login_id: Option<String>,
    pub limit: u32,
}

/// A page of the feed: message ids oldest first.
#[derive(Debug, Clone, Default)]
pub struct FeedPage {
    pub messages: Vec<MessageId>,
    /// Where the next page starts: the last message looked at (which may be past the last
    /// one returned), or the query's own cursor when nothing new has settled.
    pub cursor: Option<MessageId>,
    /// Whether messages past the cursor had settled already (ask again at once).
    pub more: bool,
}

/// How an acknowledgement ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledged {
    /// Each message with the number of its deliveries it marked delivered, in the order asked.
    Done(Vec<(MessageId, u32)>),
    /// This message is not the instance's; nothing was changed.
    Unknown(MessageId),
}

/// The feed, a part of every [`super::Store`].
#[async_trait]
pub trait FeedStore: Send + Sync {
    /// A page of `instance`'s callbacks settled by `now` (created before `now - SETTLE`),
    /// oldest first, looking at [`FEED_WINDOW`] messages at most.
    async fn feed(&self, instance: InstanceId, query: &FeedQuery, now: DateTime<Utc>) -> StoreResult<FeedPage>;

    /// Marks the pending and failed deliveries of `messages` (to `endpoint` only, when
    /// given) delivered, each with an attempt that says so (no request made) and its ledger
    /// entry, all or nothing.
    async fn acknowledge(
        &self,
        instance: InstanceId,
        messages: &[MessageId],
        endpoint: Option<&EndpointId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Acknowledged>;
}
