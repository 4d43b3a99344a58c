//! Where a batch of the group commit runs: on SQLite on the writer connection's own handle,
//! on a thread of tokio's blocking pool; on PostgreSQL on its pooled connection.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::Sqlite;

use super::{apply_each, apply_together, IngestLease, Outcome, Together, Write};
use crate::store::db::{Conn, Direct, Pooled};

/// [`apply_together`] on `connection`: on SQLite on the writer's own handle ([`direct`]).
/// `None` if that panicked (its callers hear that their writes were not taken).
pub(super) async fn together_on(
    connection: Pooled,
    batch: Vec<Write>,
    lease: &Arc<IngestLease>,
) -> Option<(Pooled, Together)> {
    match connection {
        Pooled::Sqlite(sqlite) => {
            let (runtime, lease) = (tokio::runtime::Handle::current(), lease.clone());
            let (sqlite, together) = direct(sqlite, move |conn| match conn {
                Ok(conn) => runtime.block_on(apply_together(conn, batch, &lease)),
                Err(error) => Together::NotBegun(error, batch),
            })
            .await?;
            Some((Pooled::Sqlite(sqlite), together))
        }
        mut connection @ Pooled::Postgres(_) => {
            let together = apply_together(&mut connection.conn(), batch, lease).await;
            Some((connection, together))
        }
    }
}

/// [`apply_each`] on `connection`, on SQLite on the writer's own handle as in [`together_on`].
/// `None` if that panicked.
pub(super) async fn each_on(
    connection: Pooled,
    mut writes: std::vec::IntoIter<Write>,
    mut outcomes: Vec<Outcome>,
) -> Option<(Pooled, Result<(), sqlx::Error>, std::vec::IntoIter<Write>, Vec<Outcome>)> {
    match connection {
        Pooled::Sqlite(sqlite) => {
            let runtime = tokio::runtime::Handle::current();
            let (sqlite, (done, writes, outcomes)) = direct(sqlite, move |conn| {
                let done = conn.and_then(|conn| runtime.block_on(apply_each(conn, &mut writes, &mut outcomes)));
                (done, writes, outcomes)
            })
            .await?;
            Some((Pooled::Sqlite(sqlite), done, writes, outcomes))
        }
        mut connection @ Pooled::Postgres(_) => {
            let done = apply_each(&mut connection.conn(), &mut writes, &mut outcomes).await;
            Some((connection, done, writes, outcomes))
        }
    }
}

/// Runs `work` with the SQLite writer's handle taken out of sqlx's thread ([`Direct`]),
/// on a thread of tokio's blocking pool: the batch's statements then run as plain calls,
/// with no hop per statement, and they block (on the disk, or on another process's lock
/// up to the busy timeout) only that thread, whatever runtime the store runs on. `work`
/// gets the connection, or why the handle could not be taken. `None` if `work` panicked.
async fn direct<T: Send + 'static>(
    mut sqlite: PoolConnection<Sqlite>,
    work: impl FnOnce(Result<&mut Conn<'_>, sqlx::Error>) -> T + Send + 'static,
) -> Option<(PoolConnection<Sqlite>, T)> {
    let runtime = tokio::runtime::Handle::current();
    let joined = tokio::task::spawn_blocking(move || {
        let done =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match runtime.block_on(sqlite.lock_handle()) {
                Err(error) => work(Err(error)),
                Ok(mut locked) => match Direct::new(&mut locked) {
                    Err(error) => work(Err(error)),
                    Ok(mut direct) => work(Ok(&mut Conn::Direct(&mut direct))),
                },
            }));
        match done {
            Ok(done) => (sqlite, done),
            Err(panic) => {
                // Its transaction may still be open: closed, never pooled again.
                sqlite.close_on_drop();
                std::panic::resume_unwind(panic)
            }
        }
    })
    .await;
    match joined {
        Ok(joined) => Some(joined),
        Err(error) => {
            tracing::error!(error = %error, "a batch of store writes panicked; none of them took effect");
            None
        }
    }
}
