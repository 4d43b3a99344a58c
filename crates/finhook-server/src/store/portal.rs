//! Self-service portal links in the store: a short-lived link that opens the dashboard
//! scoped to one instance without sharing its key, read-write or read-only, revocable. Only
//! the token's SHA-256 is stored; the token is shown once, in the link.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::PortalLinkId;
use finhook_core::secret::KeyHash;

use super::{InstanceId, StoreResult};

/// A portal link as stored (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalLink {
    pub id: PortalLinkId,
    pub instance_id: InstanceId,
    /// Sessions opened from it may look, not change anything.
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who made it: `admin` or `instance:<name>`, with how.
    pub created_by: String,
}

impl PortalLink {
    /// Whether it still opens sessions, and keeps those it opened, at `now`.
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A link to store.
#[derive(Debug, Clone)]
pub struct NewPortalLink {
    pub id: PortalLinkId,
    pub instance_id: InstanceId,
    pub token_hash: KeyHash,
    pub read_only: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
}

/// Portal links, a part of every [`super::Store`].
#[async_trait]
pub trait PortalStore: Send + Sync {
    async fn create_portal_link(&self, link: NewPortalLink) -> StoreResult<PortalLink>;

    /// `instance`'s links, newest first.
    async fn portal_links(&self, instance: InstanceId) -> StoreResult<Vec<PortalLink>>;

    /// The link whose token hashes to `hash`, live or not, with its instance's name.
    async fn portal_link_by_token(&self, hash: &KeyHash) -> StoreResult<Option<(PortalLink, String)>>;

    /// The link `id`, live or not.
    async fn portal_link(&self, id: &PortalLinkId) -> StoreResult<Option<PortalLink>>;

    /// Revokes `instance`'s link `id` at `now` (a link revoked before keeps its time);
    /// `None` when it is not one of `instance`'s.
    async fn revoke_portal_link(
        &self,
        instance: InstanceId,
        id: &PortalLinkId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PortalLink>>;
}
