//! The finhook server: the store, the HTTP API and the delivery worker.
//!
//! Layout:
//! - [`app`]: start-up and wiring, where the areas' routes and the state meet;
//!   [`app::App`] is what `finhook serve` runs.
//! - [`config`]: layered settings (defaults, `finhook.toml`, `FINHOOK_*`, flags).
//! - [`api`]: the HTTP API (axum), one module per resource.
//! - [`dashboard`]: the operators' web pages.
//! - [`http`]: what the HTTP areas share: problem+json errors, bearer-key auth, JSON bodies.
//! - [`ingest`]: validating and durably storing a callback.
//! - [`sandbox`]: the Flinks-compatible sandbox (synthetic data, banking API, connections).
//! - [`delivery`]: the worker (claim, sign, send, record) and its TLS client and target policy.
//! - [`store`]: the storage interface and its one implementation, on SQLite or PostgreSQL.
//! - [`recovery`]: bulk recovery jobs, re-sending failed deliveries in the background.
//! - [`retention`]: deleting finished messages (personal data) after the retention period.
//! - [`events`]: operational events (endpoint failing, disabled, recovered; attempts
//!   exhausted; certificate expiring) raised and published as messages.
//! - [`health`]: counting each endpoint's attempts per minute for its health.
//! - [`ledger`]: sealing recorded attempts into each instance's tamper-evident hash chain.
//! - [`metrics`]: the Prometheus registry of one server.
//! - [`clock`]: time as an injected dependency.

pub mod api;
pub mod app;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod events;
pub mod health;
pub mod http;
pub mod ingest;
pub mod ledger;
pub mod metrics;
pub mod probe;
pub mod recovery;
pub mod retention;
pub mod sandbox;
pub mod store;
pub mod test_callback;
