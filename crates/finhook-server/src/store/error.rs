//! The store's errors, and what each means to a caller (retry later, free space, or not).

use std::sync::Arc;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("the database failed")]
    Database(#[from] sqlx::Error),
    #[error("the database schema could not be migrated")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored row is corrupt: {0}")]
    Corrupt(String),
    /// A group commit failed: this write and every other write of its batch were rolled
    /// back. The cause is shared by every caller of the batch.
    #[error("the write was not committed; nothing of it was stored")]
    Commit(#[source] Arc<sqlx::Error>),
    #[error("the store's writer stopped before committing the write; nothing was stored")]
    WriterStopped,
    #[error("the database's file system has {free_bytes} bytes free, less than the {needed_bytes} a callback may need; free some space")]
    LowOnSpace { free_bytes: u64, needed_bytes: u64 },
    #[error("an endpoint secret could not be unsealed; is this the secrets key the store was written with?")]
    Seal(#[from] finhook_core::seal::SealError),
    /// The embedded store's payload log (callback bodies beside the database) failed.
    #[error("the payload log beside the database failed")]
    PayloadLog(#[source] std::io::Error),
}

/// What a store failure means to the one who asked, so the API can say what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The disk (or the database's quota) is full: nothing was stored; retry once space is freed.
    DiskFull,
    /// The database is busy, unreachable or failing I/O: nothing was stored; retry later.
    Unavailable,
    /// A bug or corrupt data: retrying will not help.
    Internal,
}

impl StoreError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Database(error) => classify_sqlx(error),
            Self::Commit(error) => classify_sqlx(error),
            Self::WriterStopped => FailureKind::Unavailable,
            Self::LowOnSpace { .. } => FailureKind::DiskFull,
            Self::PayloadLog(error) => match error.kind() {
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => FailureKind::DiskFull,
                _ => FailureKind::Unavailable,
            },
            Self::Conflict(_) | Self::Migrate(_) | Self::Corrupt(_) | Self::Seal(_) => FailureKind::Internal,
        }
    }
}

/// Sorts a database error by what the caller should do. SQLite's primary result codes
/// (the low byte of the extended code) and PostgreSQL's SQLSTATE classes.
pub(crate) fn classify_sqlx(error: &sqlx::Error) -> FailureKind {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if let Ok(sqlite) = code.parse::<i32>() {
                match sqlite & 0xff {
                    13 => FailureKind::DiskFull,                              // SQLITE_FULL
                    5 | 6 | 7 | 8 | 10 | 14 | 15 => FailureKind::Unavailable, // BUSY LOCKED NOMEM READONLY IOERR CANTOPEN PROTOCOL
                    _ => FailureKind::Internal,
                }
            } else if code == "53100" {
                FailureKind::DiskFull // disk_full
            } else if ["08", "53", "57", "58"].iter().any(|class| code.starts_with(class))
                || code == "40001"
                || code == "40P01"
            {
                // connection, resources, operator intervention, system error; serialization, deadlock
                FailureKind::Unavailable
            } else {
                FailureKind::Internal
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => FailureKind::Unavailable,
        _ => FailureKind::Internal,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
