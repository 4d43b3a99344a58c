//! Dashboard sessions: random tokens mapped to who signed in, for eight hours.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

/// How long a dashboard sign-in lasts.
pub const SESSION_LIFETIME: Duration = Duration::hours(8);
pub const COOKIE: &str = "finhook_session";

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOwner {
    Admin,
    Instance(String),
    /// Whoever opened a portal link to the instance: scoped to it like an instance key,
    /// for as long as the link lives, and able to change nothing when it is read-only.
    Portal {
        instance: String,
        link: finhook_core::ids::PortalLinkId,
        read_only: bool,
    },
}

/// The live sessions of this server. A restart signs everyone out, which is acceptable for
/// an operators' console and keeps no session secret on disk.
#[derive(Debug, Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, (SessionOwner, DateTime<Utc>)>>,
}

impl Sessions {
    pub fn open(&self, owner: SessionOwner, now: DateTime<Utc>) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = finhook_core::secret::hex(&bytes);
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, (_, expires)| *expires > now);
        live.insert(token.clone(), (owner, now + SESSION_LIFETIME));
        token
    }

    pub fn owner(&self, token: &str, now: DateTime<Utc>) -> Option<SessionOwner> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(token).filter(|(_, expires)| *expires > now).map(|(owner, _)| owner.clone())
    }

    /// Ends every admin session (the admin key changed).
    pub fn close_admin(&self) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, (owner, _)| *owner != SessionOwner::Admin);
    }

    pub fn close(&self, token: &str) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(token);
    }
}
