//! The behavioural suite on the embedded store (a SQLite file per test): every test module here is compiled once per
//! store (`on_sqlite`, `on_postgres`), and its `spawn_app` starts the server on that store.

use crate::helpers::{spawn_app_on, Backend, Options, TestApp};

pub(crate) const BACKEND: Backend = Backend::Sqlite;

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_on(BACKEND, Options::default()).await
}

pub(crate) async fn spawn_app_with(options: Options) -> TestApp {
    spawn_app_on(BACKEND, options).await
}

#[path = "activity.rs"]
mod activity;
#[path = "api.rs"]
mod api;
#[path = "audit.rs"]
mod audit;
#[path = "delivery.rs"]
mod delivery;
#[path = "events.rs"]
mod events;
#[path = "fairness.rs"]
mod fairness;
#[path = "feed.rs"]
mod feed;
#[path = "health.rs"]
mod health;
#[path = "ingest.rs"]
mod ingest;
#[path = "ledger.rs"]
mod ledger;
#[path = "ordering.rs"]
mod ordering;
#[path = "portal.rs"]
mod portal;
#[path = "recover.rs"]
mod recover;
#[path = "restart.rs"]
mod restart;
#[path = "sandbox.rs"]
mod sandbox;
#[path = "sequence.rs"]
mod sequence;
#[path = "signing.rs"]
mod signing;
#[path = "tls.rs"]
mod tls;
