//! The one integration-test binary: the whole server over real sockets, real databases
//! (a SQLite file, and PostgreSQL) and real TLS, with an in-process receiver whose answers
//! each test scripts. Every behavioural test of the store runs once per database.

// `on_sqlite` and `on_postgres` compile the same test files once per store, on purpose.
#![allow(clippy::duplicate_mod)]

mod gate;
mod helpers;
mod pki;
mod process;

mod on_postgres;
mod on_sqlite;

// Tests that run on one store, or on both from within: a real process (embedded store),
// the receiver's own store, the browser, several nodes on one PostgreSQL database, a full
// disk, and the two dialects' schemas.
mod browser;
mod cli;
mod examples;
mod fuzz;
mod group_commit;
mod integrity;
mod kill;
mod limits;
mod openapi;
mod payload_log;
mod postgres;
mod probe;
mod receiver;
mod schema;
mod shutdown;
mod tidy;
