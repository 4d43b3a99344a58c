//! The admin key: only its hash is kept, in the store, so it survives restarts whether it
//! was given (`FINHOOK_ADMIN_KEY`) or generated, and every node of a shared store agrees on
//! it. A node re-reads it at most every [`REFRESH_EVERY`], so a rotation made on one node
//! holds on the others within that.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use finhook_core::secret::{ApiKey, KeyHash};

use crate::store::{Store, StoreError, StoreResult};

/// The store setting that holds the admin key's hash.
pub const SETTING: &str = "admin_key_hash";

/// How long a node trusts its copy of the hash.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// Why the admin key could not be rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(
        "the admin key is given by FINHOOK_ADMIN_KEY (or admin_key in finhook.toml): change it there, then restart"
    )]
    FromSettings,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This node's view of the admin key.
#[derive(Debug)]
pub struct AdminKeyHash {
    current: RwLock<(KeyHash, Instant)>,
    /// Given by the settings: it wins over the store at every start, so it is not rotated
    /// through the API.
    from_settings: bool,
}

impl AdminKeyHash {
    pub fn new(hash: KeyHash, from_settings: bool) -> Self {
        Self { current: RwLock::new((hash, Instant::now())), from_settings }
    }

    /// Whether `presented` is the admin key's hash. When the store cannot be read, the
    /// copy this node has decides (a rotation elsewhere reaches it once the store is back):
    /// an outage of the database must not lock the operators out of a node.
    pub async fn matches(&self, store: &dyn Store, presented: &KeyHash) -> StoreResult<bool> {
        let (hash, read_at) = self.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        if self.from_settings || read_at.elapsed() < REFRESH_EVERY {
            return Ok(hash == *presented);
        }
        let stored = match store.setting(SETTING).await {
            Ok(stored) => stored.map(KeyHash::from_stored).unwrap_or(hash),
            Err(error) => {
                tracing::warn!(error = %super::ErrorChain(&error), "could not re-read the admin key; this node's copy decides");
                return Ok(hash == *presented);
            }
        };
        let matches = stored == *presented;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (stored, Instant::now());
        Ok(matches)
    }

    /// Makes a new admin key, stores its hash, and returns it (shown once); the old key
    /// stops working here at once, and on other nodes within [`REFRESH_EVERY`].
    pub async fn rotate(&self, store: &dyn Store) -> Result<ApiKey, RotateError> {
        if self.from_settings {
            return Err(RotateError::FromSettings);
        }
        let key = ApiKey::generate();
        store.put_setting(SETTING, key.hash().as_str()).await?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (key.hash(), Instant::now());
        Ok(key)
    }
}
