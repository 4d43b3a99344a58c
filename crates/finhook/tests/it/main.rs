//! The one integration-test binary: the whole server over real sockets, a real SQLite file
//! and real TLS, with an in-process receiver whose answers each test scripts.

mod helpers;

mod api;
mod browser;
mod cli;
mod delivery;
mod ingest;
mod integrity;
mod postgres;
mod receiver;
mod restart;
mod sandbox;
mod schema;
mod tls;
