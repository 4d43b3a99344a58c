//! Start-up of a [`SqlStore`]: what differs between the databases before the first query.
//!
//! SQLite: one file in WAL mode with `synchronous = FULL` (every commit durable before the
//! API answers 202), a lock file that keeps a second `finhook serve` off the file (which
//! is what lets the one process keep its claims in memory), and the secrets key in a file
//! beside the database. PostgreSQL: a pool that fails a query after a short wait when the
//! database is unreachable, a start that waits for the database, and the secrets key from
//! the operator (every node must share it).

use std::fs::File;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use finhook_core::ids::NodeId;
use finhook_core::seal::SealingKey;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::payload_log::PayloadLog;
use super::{batch, migrations, SqlStore};
use crate::store::db::Pools;
use crate::store::rows::Cols;
use crate::store::{classify_sqlx, FailureKind, StoreError};

const SQLITE_READERS: u32 = 4;
/// A PostgreSQL connection idle longer than this is pinged before use (see `open_postgres`).
const POSTGRES_PING_IF_IDLE: Duration = Duration::from_secs(1);
const POSTGRES_CONNECTIONS: u32 = 16;

/// The most connections a pool of this store holds (the group commit retries a batch at
/// most once per connection it may find dropped).
pub(super) const MAX_POOLED: u32 = POSTGRES_CONNECTIONS;
/// How long a query waits for a PostgreSQL connection before it fails (and the API answers
/// `503` with `Retry-After`): while the database is unreachable, the pool keeps trying to
/// connect for this long, so it is what a caller waits in an outage.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The first and the longest wait between tries to reach PostgreSQL at start-up.
const POSTGRES_START_RETRY: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{url:?} is not a valid sqlite:// URL")]
    Url { url: String, source: sqlx::Error },
    #[error("could not create the lock file {path}")]
    LockFile { path: PathBuf, source: std::io::Error },
    #[error("another finhook process is using {path}; stop it or choose another --database")]
    InUse { path: PathBuf },
    #[error(
        "could not read or create the secrets key file {path}; keep it beside the database or set FINHOOK_SECRETS_KEY"
    )]
    KeyFile { path: PathBuf, source: std::io::Error },
    #[error("could not open the payload log {path} (callback bodies, beside the database)")]
    PayloadLog { path: PathBuf, source: std::io::Error },
    #[error(
        "the payload log {path} lacks segment(s) {segments:?}, which hold bodies of callbacks in the database; restore it from the backup taken with the database (docs/deploy.md, \"Backing up\")"
    )]
    PayloadLogMissing { path: PathBuf, segments: Vec<u64> },
    #[error("could not connect to {url}")]
    Connect { url: String, source: sqlx::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SqlStore {
    /// Opens (creating if needed) and migrates the SQLite database at `url`, e.g.
    /// `sqlite://finhook.db`. Without `sealing`, the secrets key lives in `<database>.key`
    /// (made, mode 0600, on the first start), apart from the database so that a copy of
    /// the database alone reveals no endpoint secret.
    pub async fn open_sqlite(url: &str, sealing: Option<SealingKey>) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| OpenError::Url { url: url.to_string(), source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let lock = lock_database(&options)?;
        let payloads = PathBuf::from(format!("{}.payloads", options.get_filename().display()));
        let dir = match options.get_filename().parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let sealing = match sealing {
            Some(key) => key,
            None => key_file(&options)?,
        };
        // One writer connection: writers queue in-process instead of failing with
        // `SQLITE_BUSY`; reads run beside it thanks to WAL.
        // No ping before each use (sqlx's default): an in-process SQLite connection cannot
        // have hung up, and each ping was one more hop to the connection's thread, on
        // every query.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .after_release(|connection, _| Box::pin(clean_after_use(connection)))
            .connect_with(options.clone())
            .await
            .map_err(StoreError::from)?;
        migrations::migrator(migrations::SQLITE).await?.run(&writer).await.map_err(StoreError::from)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(SQLITE_READERS)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(StoreError::from)?;
        let pools = Pools::Sqlite { writer, reader };
        let node = NodeId::generate();
        // A database in a file keeps callback bodies in its payload log (`<database>.payloads`);
        // one in memory keeps them in its rows.
        let payload_log = match &lock {
            Some(_) => {
                let log = PayloadLog::open(payloads.clone())
                    .map_err(|source| OpenError::PayloadLog { path: payloads.clone(), source })?;
                // The oldest and newest segments the rows name must be there: a database
                // restored without its log would otherwise hold its callbacks' deliveries
                // back one by one, each reported corrupt.
                let named = pools
                    .read_optional(crate::store::db::sql(
                        "SELECT MIN(payload_segment) AS oldest, MAX(payload_segment) AS newest FROM messages",
                    ))
                    .await
                    .map_err(StoreError::from)?;
                let mut ends = Vec::new();
                for end in ["oldest", "newest"] {
                    let segment = named.as_ref().map(|row| row.opt_int(end)).transpose().map_err(StoreError::from)?;
                    // A negative number names no file: it is reported missing.
                    ends.extend(segment.flatten().map(|n| u64::try_from(n).unwrap_or(0)));
                }
                let segments = log.missing(&ends);
                if !segments.is_empty() {
                    return Err(OpenError::PayloadLogMissing { path: payloads, segments });
                }
                Some(Arc::new(log))
            }
            None => None,
        };
        Ok(Self {
            writes: batch::BatchWriter::spawn(pools.clone(), node.as_str(), payload_log),
            pools,
            sealing,
            lock: Mutex::new(lock),
            endpoints_version: AtomicU64::new(0),
            instances: Default::default(),
            sqlite_dir: Some(dir),
            node,
        })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user:pass@host/db`) and
    /// applies the migrations.
    ///
    /// A database that cannot be reached yet (refused, down, starting up) is waited for,
    /// with a warning at each try, however long it takes: a node started before its
    /// database, or during an outage, comes up by itself once the database does. An error
    /// that waiting cannot cure (a wrong password, no such database) fails at once.
    pub async fn open_postgres(url: &str, sealing: SealingKey) -> Result<Self, OpenError> {
        // sqlx pings every connection before each use by default: a network round trip per
        // query. Only a connection idle for a while may have been cut (a restart of the
        // database, a proxy's idle timeout); a busy one is known alive.
        let options = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > POSTGRES_PING_IF_IDLE {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            });
        let (mut wait, longest) = POSTGRES_START_RETRY;
        let pool = loop {
            match options.clone().connect(url).await {
                Ok(pool) => break pool,
                Err(source) if classify_sqlx(&source) == FailureKind::Unavailable => {
                    tracing::warn!(
                        database = %redact_password(url),
                        error = %source,
                        retry_in_ms = wait.as_millis(),
                        "PostgreSQL cannot be reached yet; waiting for it"
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(longest);
                }
                Err(source) => return Err(OpenError::Connect { url: redact_password(url), source }),
            }
        };
        migrations::migrator(migrations::POSTGRES).await?.run(&pool).await.map_err(StoreError::from)?;
        let pools = Pools::Postgres(pool);
        let node = NodeId::generate();
        Ok(Self {
            writes: batch::BatchWriter::spawn(pools.clone(), node.as_str(), None),
            pools,
            sealing,
            lock: Mutex::new(None),
            endpoints_version: AtomicU64::new(0),
            instances: Default::default(),
            sqlite_dir: None,
            node,
        })
    }
}

/// A connection URL without its password, for error messages and logs.
pub fn redact_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "the database URL".to_string(),
    }
}

/// Whether a SQLite writer connection may go back to the pool. A failed `Transaction` (its
/// rollback queued when it was dropped) whose `ROLLBACK` itself failed, because SQLite had
/// already rolled back on a full disk or an I/O error, leaves sqlx believing the
/// connection is still inside a transaction; its next `begin()` would open a savepoint
/// that is never committed. Such a connection is closed, and the pool opens a fresh one.
async fn clean_after_use(connection: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::{Connection, TransactionManager};
    // The round trip makes the worker apply a rollback queued by a dropped `Transaction`.
    connection.ping().await?;
    Ok(sqlx::sqlite::SqliteTransactionManager::get_transaction_depth(connection) == 0)
}

/// Reads the secrets key next to the database, or makes it on the first start.
fn key_file(options: &SqliteConnectOptions) -> Result<SealingKey, OpenError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let db = options.get_filename();
    if db.as_os_str().is_empty() || db.to_string_lossy().contains(":memory:") {
        return Ok(SealingKey::generate().0);
    }
    let path = PathBuf::from(format!("{}.key", db.display()));
    let fail = |source| OpenError::KeyFile { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            SealingKey::from_base64(&text).map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let (key, encoded) = SealingKey::generate();
            let mut file =
                std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(fail)?;
            file.write_all(encoded.as_bytes()).and_then(|()| file.sync_all()).map_err(fail)?;
            Ok(key)
        }
        Err(error) => Err(fail(error)),
    }
}

fn lock_database(options: &SqliteConnectOptions) -> Result<Option<File>, OpenError> {
    let db = options.get_filename();
    if db.as_os_str().is_empty() || db.to_string_lossy().contains(":memory:") {
        return Ok(None);
    }
    let path = PathBuf::from(format!("{}.lock", db.display()));
    let file = File::create(&path).map_err(|source| OpenError::LockFile { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::InUse { path: db.to_path_buf() }),
        Err(std::fs::TryLockError::Error(source)) => Err(OpenError::LockFile { path, source }),
    }
}
