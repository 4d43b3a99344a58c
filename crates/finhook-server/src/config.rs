//! `finhook serve` settings: defaults, then `finhook.toml`, then `FINHOOK_*` environment
//! variables, then command-line flags, each layer overriding the one before.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Every setting of the server. Field names are the keys of `finhook.toml` and, upper-cased
/// behind `FINHOOK_`, of the environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// `sqlite://PATH` for the embedded store.
    pub database: String,
    /// Permit loopback endpoints, and plain `http://` to them. Development and tests only.
    pub allow_insecure_loopback: bool,
    /// PEM certificate chain (the leaf first) to serve HTTPS with, beside `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Private networks endpoints may use anyway, e.g. `["10.20.0.0/16"]`.
    pub allow_private_network: Vec<IpNet>,
    /// PEM files of extra trusted root CAs (a private CA), on top of the standard web roots.
    pub extra_root_ca: Vec<PathBuf>,
    /// The largest callback body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Bytes of callback bodies held in memory at once, across requests (at least
    /// `max_body_bytes`); past it, `503` with `Retry-After`.
    pub max_bodies_in_memory_bytes: usize,
    /// How deeply a callback body may nest.
    pub max_depth: usize,
    /// The timeout of one delivery attempt.
    pub delivery_timeout_seconds: u64,
    /// Attempts in flight at once.
    pub delivery_concurrency: usize,
    /// Attempts in flight at once to any one endpoint (the most its adaptive cap grows to).
    pub delivery_per_endpoint_concurrency: usize,
    /// An attempt running this long gives its slot back and counts as slow; slow attempts
    /// have a budget of their own (`delivery_concurrency` again).
    pub delivery_slow_after_ms: u64,
    /// The longest the worker waits before looking for due deliveries by itself.
    pub poll_interval_ms: u64,
    /// Inbound connections open at once (lowered to fit the process's file limit); at the
    /// limit, the longest-idle connection is closed to make room.
    pub http_max_connections: usize,
    /// A request's headers must arrive within this, and an idle keep-alive connection is
    /// closed after it.
    pub http_header_timeout_seconds: u64,
    /// A callback's body must arrive within this (`408` otherwise).
    pub http_body_timeout_seconds: u64,
    /// Bytes of callbacks one instance may store (0: no quota); past it, `507`.
    pub instance_quota_bytes: u64,
    /// Days finished messages (personal data) are kept; 0 keeps them forever.
    pub retention_days: u32,
    /// Callbacks one instance may send per second, per node (0: no limit); over it, `429`.
    pub ingest_rate_per_second: u32,
    /// How many callbacks an instance may send at once above its rate.
    pub ingest_burst: u32,
    /// Failed attempts in a row after which an endpoint is reported `endpoint.failing`.
    pub failing_after_attempts: u32,
    /// Hours during which every attempt to an endpoint failed after which finhook disables
    /// it (`endpoint.disabled`; its deliveries wait until it is enabled again); 0: never.
    pub disable_after_hours: u32,
    /// The instance whose endpoints also get every instance's operational events (the
    /// operators'); unset: each instance gets only its own.
    pub operator_events_instance: Option<String>,
    /// The admin key (`FINHOOK_ADMIN_KEY`). When unset, the first start generates one.
    #[serde(skip_serializing)]
    pub admin_key: Option<Redacted>,
    /// Base64 of 32 bytes sealing endpoint secrets at rest (`FINHOOK_SECRETS_KEY`). Required
    /// for PostgreSQL (the same on every node); with SQLite it defaults to `<database>.key`.
    #[serde(skip_serializing)]
    pub secrets_key: Option<Redacted>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            database: "sqlite://finhook.db".to_string(),
            allow_insecure_loopback: false,
            allow_private_network: Vec::new(),
            tls_cert: None,
            tls_key: None,
            extra_root_ca: Vec::new(),
            max_body_bytes: 32 * 1024 * 1024,
            max_bodies_in_memory_bytes: 256 * 1024 * 1024,
            max_depth: finhook_core::flinks::DEFAULT_MAX_DEPTH,
            delivery_timeout_seconds: 15,
            // An attempt holds its slot until its record is committed (a group-commit fsync),
            // so one endpoint's rate is at most its cap over that cycle: with 32, 2,500/s of
            // 8 KiB callbacks while ingest ran at 3,100/s (see docs/BENCHMARKS.md).
            delivery_concurrency: 128,
            delivery_per_endpoint_concurrency: 64,
            delivery_slow_after_ms: 1000,
            poll_interval_ms: 1000,
            http_max_connections: 10_000,
            http_header_timeout_seconds: 30,
            http_body_timeout_seconds: 60,
            instance_quota_bytes: 10 * 1024 * 1024 * 1024,
            retention_days: 90,
            ingest_rate_per_second: 5_000,
            ingest_burst: 10_000,
            failing_after_attempts: 5,
            disable_after_hours: 5 * 24,
            operator_events_instance: None,
            admin_key: None,
            secrets_key: None,
        }
    }
}

/// The settings' keys; other `FINHOOK_*` variables (such as `FINHOOK_LOG`) belong to others.
const KEYS: [&str; 27] = [
    "listen",
    "database",
    "allow_insecure_loopback",
    "allow_private_network",
    "tls_cert",
    "tls_key",
    "extra_root_ca",
    "max_body_bytes",
    "max_bodies_in_memory_bytes",
    "max_depth",
    "delivery_timeout_seconds",
    "delivery_concurrency",
    "delivery_per_endpoint_concurrency",
    "delivery_slow_after_ms",
    "poll_interval_ms",
    "http_max_connections",
    "http_header_timeout_seconds",
    "http_body_timeout_seconds",
    "instance_quota_bytes",
    "retention_days",
    "ingest_rate_per_second",
    "ingest_burst",
    "failing_after_attempts",
    "disable_after_hours",
    "operator_events_instance",
    "admin_key",
    "secrets_key",
];

/// A string that never prints.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Settings {
    /// Layers the sources. `config_file` defaults to `finhook.toml` in the working
    /// directory (skipped when absent); `flags` holds only the flags given on the command line.
    pub fn load(config_file: Option<&Path>, flags: impl Serialize) -> Result<Self, Box<figment::Error>> {
        let file = config_file.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("finhook.toml"));
        if config_file.is_some() && !file.exists() {
            return Err(Box::new(figment::Error::from(format!("the config file {} does not exist", file.display()))));
        }
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(
                Env::prefixed("FINHOOK_")
                    .filter(|key| KEYS.iter().any(|known| key.as_str().eq_ignore_ascii_case(known))),
            )
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(Box::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("finhook.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    #[test]
    fn the_file_overrides_defaults_and_flags_override_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            dir.path(),
            "listen = \"127.0.0.1:9000\"\ndatabase = \"sqlite://other.db\"\ndelivery_timeout_seconds = 5\nallow_private_network = [\"10.20.0.0/16\"]\n",
        );
        let flags = serde_json::json!({ "listen": "127.0.0.1:9001" });
        let settings = Settings::load(Some(&file), flags).expect("load");
        assert_eq!(settings.listen.port(), 9001, "a flag beats the file");
        assert_eq!(settings.database, "sqlite://other.db");
        assert_eq!(settings.delivery_timeout_seconds, 5);
        assert_eq!(settings.allow_private_network.len(), 1);
        assert_eq!(settings.delivery_concurrency, 128, "unset keys keep their defaults");
    }

    #[test]
    fn a_typo_or_a_missing_file_is_an_error_not_a_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "lisen = \"127.0.0.1:9000\"\n");
        let error = Settings::load(Some(&file), serde_json::json!({})).expect_err("unknown key");
        assert!(error.to_string().contains("lisen"), "{error}");
        let missing = dir.path().join("nope.toml");
        assert!(Settings::load(Some(&missing), serde_json::json!({})).is_err());
    }

    #[test]
    fn the_admin_key_never_prints() {
        let settings = Settings { admin_key: Some(Redacted("fhk_secret_value".into())), ..Settings::default() };
        assert!(!format!("{settings:?}").contains("fhk_secret_value"));
    }
}
