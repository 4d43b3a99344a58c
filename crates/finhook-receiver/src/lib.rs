//! finhook's receiver kit: mount it in any axum service (or run `finhook listen`) to take
//! Flinks-style webhooks the way Flinks asks receivers to.
//!
//! For each POST it verifies the signature (Standard Webhooks when present, else
//! `flinks-authenticity-key`), checks that the body is a callback, stores it durably,
//! deduplicates it (on `webhook-id`, or LoginId + ResponseType + RequestId), optionally
//! relays it to your app, and only then answers 200. The callbacks of one LoginId are
//! conciliated in any arrival order.
//!
//! Layout:
//! - [`verify`]: secrets and the signature check (the sender's own code, from `finhook-core`).
//! - [`jwks`]: the sender's public keys for `v1a` signatures, fetched and cached.
//! - [`store`]: the durable SQLite store.
//! - [`conciliation`]: the pure per-LoginId view.
//! - [`server`]: the axum router and the receive pipeline.
//! - [`forward`]: relaying to the user's app.
//! - [`catch_up`]: pulling what was missed from finhook's feed, and acknowledging it.
//! - `html`: the page for people.

pub mod catch_up;
pub mod conciliation;
pub mod forward;
mod html;
pub mod jwks;
pub mod pages;
pub mod server;
pub mod store;
pub mod verify;

pub use catch_up::{CatchUpError, CaughtUp, FeedSource};
pub use jwks::JwksCache;
pub use pages::Pages;
pub use server::{router, Receipt, Receiver, Verdict};
pub use store::ReceiverStore;
pub use verify::{ReceiverSecret, Scheme, Verifier};
