//! Where a batch of the group commit runs: on SQLite on the writer connection's own handle,
//! on a thread of tokio's blocking pool; on PostgreSQL on its pooled connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::Sqlite;
use tokio::sync::{mpsc, Mutex};

use super::super::payload_log::PayloadLog;
use super::{answer, apply_each, apply_together, queued, Outcome, Together, Write, WriterState};
use crate::store::db::{Conn, Direct, Pooled};

/// The longest a SQLite session ([`session_on`]) keeps the writer connection while writes
/// keep coming; then it goes back to the pool, where the store's other writes (an endpoint
/// created, a retention sweep) wait for it behind at most this and one batch.
const SESSION: Duration = Duration::from_millis(20);

/// How a session ended.
pub(super) enum Ended {
    /// Every batch committed and its callers were answered; the connection went back to
    /// the pool.
    Idle,
    /// This batch did not commit in one transaction: [`super::settle`] it on `Pooled`.
    Unsettled(Pooled, Together),
    /// A batch panicked: its callers hear that their writes were not taken (their replies
    /// were dropped), and the connection, whose transaction may be open, was closed.
    Panicked,
}

/// Applies `first` in one transaction ([`apply_together`]) on `connection` and answers its
/// callers; on SQLite then, in the same session, batch after batch of whatever queued
/// meanwhile on `queue`, until the queue is empty, [`SESSION`] has passed or a batch does
/// not commit.
///
/// The session takes the writer's handle out of sqlx's thread once ([`direct`]), not once
/// per batch: under load a batch follows the last one's `COMMIT` at once, with no hop to
/// another thread between them (the hops to take and give back the handle and to pool the
/// connection were about a third of the writer's time at 8,000 callbacks/s), and the
/// statements stay prepared from one batch to the next. On PostgreSQL one batch, on the
/// pooled connection.
pub(super) async fn session_on(
    connection: Pooled,
    first: Vec<Write>,
    queue: &Arc<Mutex<mpsc::UnboundedReceiver<Write>>>,
    state: &Arc<WriterState>,
) -> Ended {
    match connection {
        Pooled::Sqlite(sqlite) => {
            let (runtime, state, queue) = (tokio::runtime::Handle::current(), state.clone(), queue.clone());
            let ran = direct(sqlite, state.payload_log.clone(), move |conn| {
                let conn = match conn {
                    Ok(conn) => conn,
                    Err(error) => return Some(Together::NotBegun(error, first)),
                };
                let started = Instant::now();
                let mut batch = first;
                loop {
                    match runtime.block_on(apply_together(conn, batch, &state)) {
                        Together::Committed(outcomes) => answer(outcomes),
                        unsettled => return Some(unsettled),
                    }
                    if started.elapsed() >= SESSION {
                        return None;
                    }
                    batch = queued(&mut queue.blocking_lock(), Vec::new());
                    if batch.is_empty() {
                        return None;
                    }
                }
            })
            .await;
            match ran {
                None => Ended::Panicked,
                Some((_, None)) => Ended::Idle,
                Some((sqlite, Some(unsettled))) => Ended::Unsettled(Pooled::Sqlite(sqlite), unsettled),
            }
        }
        connection @ Pooled::Postgres(_) => match together_on(connection, first, state).await {
            Some((_, Together::Committed(outcomes))) => {
                answer(outcomes);
                Ended::Idle
            }
            Some((connection, unsettled)) => Ended::Unsettled(connection, unsettled),
            None => Ended::Panicked,
        },
    }
}

/// [`apply_together`] on `connection`: on SQLite on the writer's own handle ([`direct`]).
/// `None` if that panicked (its callers hear that their writes were not taken).
pub(super) async fn together_on(
    connection: Pooled,
    batch: Vec<Write>,
    state: &Arc<WriterState>,
) -> Option<(Pooled, Together)> {
    match connection {
        Pooled::Sqlite(sqlite) => {
            let (runtime, state) = (tokio::runtime::Handle::current(), state.clone());
            let (sqlite, together) = direct(sqlite, state.payload_log.clone(), move |conn| match conn {
                Ok(conn) => runtime.block_on(apply_together(conn, batch, &state)),
                Err(error) => Together::NotBegun(error, batch),
            })
            .await?;
            Some((Pooled::Sqlite(sqlite), together))
        }
        mut connection @ Pooled::Postgres(_) => {
            let together = apply_together(&mut connection.conn(), batch, state).await;
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
    state: &WriterState,
) -> Option<(Pooled, Result<(), sqlx::Error>, std::vec::IntoIter<Write>, Vec<Outcome>)> {
    match connection {
        Pooled::Sqlite(sqlite) => {
            let runtime = tokio::runtime::Handle::current();
            let (sqlite, (done, writes, outcomes)) = direct(sqlite, state.payload_log.clone(), move |conn| {
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
/// with the payload log its ingests append to (if the store has one),
/// on a thread of tokio's blocking pool: the batch's statements then run as plain calls,
/// with no hop per statement, and they block (on the disk, or on another process's lock
/// up to the busy timeout) only that thread, whatever runtime the store runs on. `work`
/// gets the connection, or why the handle could not be taken. `None` if `work` panicked.
async fn direct<T: Send + 'static>(
    mut sqlite: PoolConnection<Sqlite>,
    log: Option<Arc<PayloadLog>>,
    work: impl FnOnce(Result<&mut Conn<'_>, sqlx::Error>) -> T + Send + 'static,
) -> Option<(PoolConnection<Sqlite>, T)> {
    let runtime = tokio::runtime::Handle::current();
    let joined = tokio::task::spawn_blocking(move || {
        let done =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match runtime.block_on(sqlite.lock_handle()) {
                Err(error) => work(Err(error)),
                Ok(mut locked) => match Direct::new(&mut locked, log) {
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
