//! The public keys of `v1a` (Ed25519) signatures, fetched from the sender's JWK set URL and
//! cached: fetched on first need, again when the cache is older than the server's
//! `Cache-Control: max-age` (5 minutes without one), and when a webhook names a `kid` the
//! cache lacks (a rotation), at most once per `min_refetch` so that forged kids cannot make
//! this receiver hammer the sender.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use finhook_core::signing::asymmetric::{Jwks, KeyError, PublicKey};

/// How long a fetched set is trusted when the server does not say.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The shortest time between two fetches for an unknown `kid`.
const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(30);
/// The longest a JWK set fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the JWK set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("could not fetch the JWK set from {url}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the JWK set at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the JWK set at {url} is not a JWK set")]
    NotJwks {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the JWK set at {url} holds no usable Ed25519 key")]
    Keys {
        url: String,
        #[source]
        source: KeyError,
    },
}

#[derive(Debug, Default)]
struct Cached {
    keys: Vec<(String, PublicKey)>,
    fetched_at: Option<Instant>,
    max_age: Duration,
}

/// A JWK set URL and what was last fetched from it.
#[derive(Debug)]
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    min_refetch: Duration,
    cached: RwLock<Cached>,
    /// One fetch at a time; the others wait for it and use its result.
    fetching: tokio::sync::Mutex<()>,
}

impl JwksCache {
    pub fn new(url: impl Into<String>) -> Self {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().unwrap_or_default();
        Self {
            url: url.into(),
            client,
            min_refetch: DEFAULT_MIN_REFETCH,
            cached: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Changes the shortest time between two fetches for an unknown `kid` (tests: zero).
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> Self {
        self.min_refetch = min_refetch;
        self
    }

    /// The keys last fetched.
    pub fn keys(&self) -> Vec<PublicKey> {
        self.cached.read().map(|cached| cached.keys.iter().map(|(_, key)| *key).collect()).unwrap_or_default()
    }

    /// Fetches the set if it was never fetched, is stale, or lacks one of `kids` (and the
    /// last fetch is at least `min_refetch` old).
    pub async fn refresh_if_needed(&self, kids: &[&str]) -> Result<(), JwksError> {
        if !self.needs_fetch(kids) {
            return Ok(());
        }
        let _one_at_a_time = self.fetching.lock().await;
        if !self.needs_fetch(kids) {
            return Ok(()); // fetched meanwhile
        }
        let fetched = self.fetch().await;
        let mut cached = self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        cached.fetched_at = Some(Instant::now());
        let (keys, max_age) = fetched?;
        cached.keys = keys;
        cached.max_age = max_age;
        Ok(())
    }

    fn needs_fetch(&self, kids: &[&str]) -> bool {
        let Ok(cached) = self.cached.read() else { return true };
        let Some(at) = cached.fetched_at else { return true };
        let age = at.elapsed();
        let unknown = kids.iter().any(|kid| !cached.keys.iter().any(|(known, _)| known == kid));
        age >= cached.max_age || (unknown && age >= self.min_refetch)
    }

    async fn fetch(&self) -> Result<(Vec<(String, PublicKey)>, Duration), JwksError> {
        let url = self.url.clone();
        let response =
            self.client.get(&url).send().await.map_err(|source| JwksError::Fetch { url: url.clone(), source })?;
        if !response.status().is_success() {
            return Err(JwksError::Status { url, status: response.status().as_u16() });
        }
        let max_age = response
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_MAX_AGE);
        let set: Jwks = response.json().await.map_err(|source| JwksError::NotJwks { url: url.clone(), source })?;
        let keys = set.ed25519_keys().map_err(|source| JwksError::Keys { url, source })?;
        Ok((keys.into_iter().map(|key| (key.kid(), key)).collect(), max_age))
    }
}

/// `max-age=N` of a `Cache-Control` value.
fn max_age(value: &str) -> Option<Duration> {
    value
        .split(',')
        .filter_map(|directive| directive.trim().strip_prefix("max-age="))
        .find_map(|seconds| seconds.trim().parse().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn max_age_is_read_from_cache_control() {
        use std::time::Duration;
        assert_eq!(super::max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(super::max_age("max-age=0"), Some(Duration::ZERO));
        assert_eq!(super::max_age("no-store"), None);
    }
}
