//! IO-free core of finhook: the Flinks callback types, webhook signing and verification,
//! typed identifiers, secrets and the retry schedule.
//!
//! Nothing in this crate touches the network or the disk. Its only ambient inputs are the
//! OS random generator (new secrets, keys, nonces) and the wall clock inside new ULID ids;
//! "now" for signatures and schedules, and retry jitter, are always arguments. The server
//! signs with it, the receiver verifies with it, and both are tested against the same
//! vectors.
//!
//! Layout:
//! - [`flinks`]: typed `KYC`, `GetAccountsDetail` and `Investments` payloads and the
//!   validating parser that names the JSON path of every error.
//! - [`signing`]: `flinks-authenticity-key` and Standard Webhooks signatures.
//! - [`secret`]: endpoint secrets and API keys, redacted in `Debug`.
//! - [`seal`]: AES-256-GCM sealing of endpoint secrets at rest.
//! - [`ids`]: prefixed ULID identifiers (`msg_`, `ep_`, ...).
//! - [`events`]: finhook's operational events, and what a message is (callback or event).
//! - [`ledger`]: the delivery ledger's hash chain and its offline verification.
//! - [`retry`]: the per-endpoint retry policy and the schedule it implies.
//! - [`text`]: the identifier rules both stores share, and storable text from outside.

pub mod events;
pub mod flinks;
pub mod ids;
pub mod ledger;
pub mod retry;
pub mod seal;
pub mod secret;
pub mod signing;
pub mod text;
