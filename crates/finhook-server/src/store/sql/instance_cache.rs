//! A short-lived copy of instance reads for the API's hot path: every ingest looks its
//! instance up (by name for the admin key, by key hash for an instance key), and on SQLite
//! that read was a hop to a connection thread per callback (measured: 12 % of the server's
//! CPU per callback). An entry is trusted for [`FRESH_FOR`]; any instance write through
//! this store drops them all at once, so this node never sees its own changes late. A
//! change made on another node of a shared store (a rotated key, new sandbox settings)
//! applies here within [`FRESH_FOR`]. `stored_bytes` (the quota's figure) follows this
//! node's own ingests and sweeps at once, other nodes' within [`FRESH_FOR`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::{Instance, InstanceId};

/// How long a read instance is trusted.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(1);
/// Past this many entries the cache starts over (bounds memory whatever the tenants).
const MOST_ENTRIES: usize = 10_000;

/// What an instance was looked up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum By {
    Name(String),
    KeyHash(String),
}

#[derive(Debug, Default)]
pub(super) struct InstanceCache {
    entries: Mutex<Entries>,
    /// Bumped by every instance write; copies read under an older version are stale.
    version: AtomicU64,
}

/// One copy per instance, and what each lookup found; so that an ingest updates its
/// instance's copy in one step, whatever the number of tenants.
#[derive(Debug, Default)]
struct Entries {
    copies: HashMap<InstanceId, (Instant, u64, Instance)>,
    found: HashMap<By, InstanceId>,
}

impl InstanceCache {
    /// The version to pass to [`InstanceCache::put`]: read before the query, so that a
    /// write that lands during the query makes its result stale at once.
    pub(super) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn get(&self, by: &By) -> Option<Instance> {
        let entries = self.lock();
        let (at, version, instance) = entries.copies.get(entries.found.get(by)?)?;
        (at.elapsed() < FRESH_FOR && *version == self.version()).then(|| instance.clone())
    }

    pub(super) fn put(&self, by: By, instance: &Instance, version: u64) {
        let mut entries = self.lock();
        if entries.found.len() >= MOST_ENTRIES {
            *entries = Entries::default();
        }
        entries.found.insert(by, instance.id);
        entries.copies.insert(instance.id, (Instant::now(), version, instance.clone()));
    }

    /// `bytes` more are stored for `instance`: its copy says so too.
    pub(super) fn stored(&self, instance: InstanceId, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        if let Some((_, _, copy)) = self.lock().copies.get_mut(&instance) {
            copy.stored_bytes = copy.stored_bytes.saturating_add(bytes);
        }
    }

    /// An instance was written (whatever the outcome: a failed write may have committed).
    pub(super) fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        *self.lock() = Entries::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Mode, SandboxSettings};

    fn acme(id: i64) -> Instance {
        Instance {
            id: InstanceId(id),
            name: "acme".into(),
            customer_id: "c".into(),
            mode: Mode::Live,
            created_at: chrono::DateTime::from_timestamp(0, 0).expect("time"),
            stored_bytes: 100,
            sandbox: SandboxSettings { strict_auth: false, delay_ms: 0 },
        }
    }

    #[test]
    fn a_write_drops_every_copy_and_a_read_that_raced_it_is_never_kept() {
        let cache = InstanceCache::default();
        let by = By::Name("acme".into());
        let before = cache.version();
        cache.put(by.clone(), &acme(1), before);
        assert_eq!(cache.get(&by).map(|i| i.id), Some(InstanceId(1)));
        cache.changed();
        assert!(cache.get(&by).is_none(), "a write drops the copies");
        // A read that began before the write and ends after it is stale on arrival.
        cache.put(by.clone(), &acme(1), before);
        assert!(cache.get(&by).is_none());
        cache.put(by.clone(), &acme(1), cache.version());
        assert!(cache.get(&by).is_some());
    }

    #[test]
    fn this_nodes_ingests_count_in_its_copies_at_once() {
        let cache = InstanceCache::default();
        let (by_name, by_key) = (By::Name("acme".into()), By::KeyHash("h".into()));
        cache.put(by_name.clone(), &acme(1), cache.version());
        cache.put(by_key.clone(), &acme(1), cache.version());
        cache.put(By::Name("other".into()), &acme(2), cache.version());
        cache.stored(InstanceId(1), 50);
        assert_eq!(cache.get(&by_name).map(|i| i.stored_bytes), Some(150));
        assert_eq!(cache.get(&by_key).map(|i| i.stored_bytes), Some(150));
        assert_eq!(cache.get(&By::Name("other".into())).map(|i| i.stored_bytes), Some(100));
    }
}
