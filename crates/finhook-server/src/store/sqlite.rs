//! The embedded store: one SQLite file in WAL mode, migrated at start.
//!
//! All writes go through a pool of exactly one connection, so writers queue in-process
//! instead of failing with `SQLITE_BUSY`; reads use their own small pool and run beside
//! the writer thanks to WAL. `synchronous = FULL` makes every commit durable before the
//! API answers 202. A lock file next to the database keeps a second `finhook serve` off the
//! same file, which is what makes releasing every claim at start-up safe.

use std::fs::File;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::flinks::ResponseType;
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};
use finhook_core::seal::SealingKey;
use finhook_core::secret::{EndpointSecret, KeyHash};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::*;

mod batch;
mod messages;
mod queue;
mod sandbox;

use super::rows::*;
use messages::{ingest_on, schedule_deliveries, subscribed_endpoints};

const READ_CONNECTIONS: u32 = 4;

#[derive(Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Ingests and attempt records go through here, many to a transaction.
    batch: batch::BatchWriter,
    /// Held for the life of the store; the OS releases it if the process dies.
    _lock: Option<File>,
    /// Seals endpoint secrets at rest.
    sealing: SealingKey,
}

/// Why the embedded store could not be opened.
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `url`, e.g. `sqlite://finhook.db`.
    /// Without `sealing`, the secrets key lives in `<database>.key` (made, mode 0600, on the
    /// first start), apart from the database so that a copy of the database alone reveals
    /// no endpoint secret.
    pub async fn open(url: &str, sealing: Option<SealingKey>) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| OpenError::Url { url: url.to_string(), source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let lock = lock_database(&options)?;
        let sealing = match sealing {
            Some(key) => key,
            None => key_file(&options)?,
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(|connection, _| Box::pin(clean_after_use(connection)))
            .connect_with(options.clone())
            .await
            .map_err(StoreError::from)?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await.map_err(StoreError::from)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.read_only(true))
            .await
            .map_err(StoreError::from)?;
        let batch = batch::BatchWriter::spawn(writer.clone());
        Ok(Self { writer, reader, batch, _lock: lock, sealing })
    }
}

/// Whether a writer connection may go back to the pool. A failed `Transaction` (its
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

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        // Reading is not enough: a full disk leaves reads working. Commit a tiny write
        // through the group commit, so "healthy" means "a 202 would be durable now".
        self.batch.probe(Utc::now().timestamp_millis()).await
    }

    async fn purge_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let finished = "SELECT m.id FROM messages m WHERE m.created_at < ?
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status = 'pending')";
        sqlx::query(&format!(
            "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id IN ({finished}))"
        ))
        .bind(millis(cutoff))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("DELETE FROM deliveries WHERE message_id IN ({finished})"))
            .bind(millis(cutoff))
            .execute(&mut *tx)
            .await?;
        let purged = sqlx::query(&format!("DELETE FROM messages WHERE id IN ({finished})"))
            .bind(millis(cutoff))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(purged)
    }

    async fn stats(&self, now: DateTime<Utc>) -> StoreResult<StoreStats> {
        let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(&self.reader).await?;
        let mut deliveries_by_status = Vec::new();
        for status in
            [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed, DeliveryStatus::Cancelled]
        {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = ?")
                .bind(status.as_str())
                .fetch_one(&self.reader)
                .await?;
            deliveries_by_status.push((status, count));
        }
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT min(d.next_attempt_at) FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.status = 'pending' AND e.enabled = 1 AND d.next_attempt_at <= ?",
        )
        .bind(millis(now))
        .fetch_one(&self.reader)
        .await?;
        Ok(StoreStats { messages, deliveries_by_status, oldest_due_at: oldest.map(time_of).transpose()? })
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.reader)
            .await?)
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        // An explicit transaction, not autocommit: with `RETURNING`, SQLite hands the row
        // over at the first step and commits only when the statement is reset, and an error
        // there (a full disk) never reaches sqlx, which had its row. `COMMIT` reports it.
        let mut tx = self.writer.begin().await?;
        let result = sqlx::query(&format!(
            "INSERT INTO instances (name, customer_id, mode, api_key_hash, created_at) VALUES (?, ?, ?, ?, ?)
             RETURNING {INSTANCE_COLUMNS}"
        ))
        .bind(&new.name)
        .bind(&new.customer_id)
        .bind(new.mode.as_str())
        .bind(new.api_key_hash.as_str())
        .bind(millis(new.now))
        .fetch_one(&mut *tx)
        .await;
        match result {
            Ok(row) => {
                tx.commit().await?;
                instance_from(&row)
            }
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict("an instance with this name")),
            Err(error) => Err(error.into()),
        }
    }

    async fn instance_by_name(&self, name: &str) -> StoreResult<Option<Instance>> {
        sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(instance_from)
            .transpose()
    }

    async fn instance_by_key_hash(&self, hash: &KeyHash) -> StoreResult<Option<Instance>> {
        sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE api_key_hash = ?"))
            .bind(hash.as_str())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(instance_from)
            .transpose()
    }

    async fn set_instance_key_hash(&self, instance: InstanceId, hash: &KeyHash) -> StoreResult<()> {
        sqlx::query("UPDATE instances SET api_key_hash = ? WHERE id = ?")
            .bind(hash.as_str())
            .bind(instance.0)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn instance_key_matches(&self, instance: InstanceId, hash: &KeyHash) -> StoreResult<bool> {
        Ok(sqlx::query("SELECT 1 FROM instances WHERE id = ? AND api_key_hash = ?")
            .bind(instance.0)
            .bind(hash.as_str())
            .fetch_optional(&self.reader)
            .await?
            .is_some())
    }

    async fn list_instances(&self) -> StoreResult<Vec<Instance>> {
        sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY name"))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(instance_from)
            .collect()
    }

    async fn create_endpoint(&self, instance: InstanceId, new: NewEndpoint) -> StoreResult<Endpoint> {
        let id = EndpointId::generate();
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO endpoints (id, instance_id, url, description, event_types, max_attempts, interval_seconds,
                                    backoff, success, enabled, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(id.as_str())
        .bind(instance.0)
        .bind(&new.url)
        .bind(&new.description)
        .bind(event_types_to_json(&new.event_types))
        .bind(new.retry.max_attempts)
        .bind(new.retry.interval_seconds)
        .bind(backoff_str(new.retry.backoff))
        .bind(new.success.as_str())
        .bind(new.enabled)
        .bind(millis(new.now))
        .bind(millis(new.now))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES (?, ?, ?)")
            .bind(id.as_str())
            .bind(self.sealing.seal(new.secret.expose(), id.as_str()))
            .bind(millis(new.now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        endpoint_from(&row)
    }

    async fn endpoint(&self, instance: InstanceId, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = ? AND id = ?"))
            .bind(instance.0)
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(endpoint_from)
            .transpose()
    }

    async fn list_endpoints(&self, instance: InstanceId) -> StoreResult<Vec<Endpoint>> {
        sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = ? ORDER BY id"))
            .bind(instance.0)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(endpoint_from)
            .collect()
    }

    async fn update_endpoint(
        &self,
        instance: InstanceId,
        id: &EndpointId,
        patch: EndpointPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Endpoint>> {
        let mut tx = self.writer.begin().await?;
        let Some(row) =
            sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = ? AND id = ?"))
                .bind(instance.0)
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let mut endpoint = endpoint_from(&row)?;
        endpoint.url = patch.url.unwrap_or(endpoint.url);
        endpoint.description = patch.description.unwrap_or(endpoint.description);
        endpoint.event_types = patch.event_types.unwrap_or(endpoint.event_types);
        endpoint.retry = patch.retry.unwrap_or(endpoint.retry);
        endpoint.success = patch.success.unwrap_or(endpoint.success);
        endpoint.enabled = patch.enabled.unwrap_or(endpoint.enabled);
        endpoint.updated_at = now;
        sqlx::query(
            "UPDATE endpoints SET url = ?, description = ?, event_types = ?, max_attempts = ?, interval_seconds = ?,
                    backoff = ?, success = ?, enabled = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(&endpoint.url)
        .bind(&endpoint.description)
        .bind(event_types_to_json(&endpoint.event_types))
        .bind(endpoint.retry.max_attempts)
        .bind(endpoint.retry.interval_seconds)
        .bind(backoff_str(endpoint.retry.backoff))
        .bind(endpoint.success.as_str())
        .bind(endpoint.enabled)
        .bind(millis(now))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(endpoint))
    }

    async fn delete_endpoint(&self, instance: InstanceId, id: &EndpointId, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let deleted = sqlx::query("DELETE FROM endpoints WHERE instance_id = ? AND id = ?")
            .bind(instance.0)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = ?
             WHERE endpoint_id = ? AND status = 'pending'",
        )
        .bind(millis(now))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_secret(
        &self,
        instance: InstanceId,
        id: &EndpointId,
        secret: &EndpointSecret,
        now: DateTime<Utc>,
        old_expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM endpoints WHERE instance_id = ? AND id = ?")
            .bind(instance.0)
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        // Secrets already expired are dropped; the others stop signing at `old_expires_at`
        // at the latest.
        sqlx::query("DELETE FROM endpoint_secrets WHERE endpoint_id = ? AND expires_at <= ?")
            .bind(id.as_str())
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE endpoint_secrets SET expires_at = min(coalesce(expires_at, ?1), ?1) WHERE endpoint_id = ?2",
        )
        .bind(millis(old_expires_at))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES (?, ?, ?)")
            .bind(id.as_str())
            .bind(self.sealing.seal(secret.expose(), id.as_str()))
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn ingest(&self, message: NewMessage) -> StoreResult<IngestOutcome> {
        self.batch.ingest(message).await
    }

    async fn list_messages(&self, instance: InstanceId, filter: &MessageFilter) -> StoreResult<Vec<MessageSummary>> {
        let rows = sqlx::query(
            "SELECT id, response_type, login_id, request_id, tag, created_at,
                    (SELECT group_concat(status) FROM (SELECT status FROM deliveries d WHERE d.message_id = m.id ORDER BY d.id)) AS statuses
             FROM messages m
             WHERE instance_id = ?1
               AND (?2 IS NULL OR login_id = ?2)
               AND (?3 IS NULL OR response_type = ?3)
               AND (?4 IS NULL OR id < ?4)
               AND (?5 IS NULL OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status = ?5))
             ORDER BY id DESC LIMIT ?6",
        )
        .bind(instance.0)
        .bind(&filter.login_id)
        .bind(filter.response_type.map(|t| t.as_str()))
        .bind(filter.before.as_ref().map(|id| id.as_str()))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(listed_from).collect()
    }

    async fn message(&self, instance: InstanceId, id: &MessageId) -> StoreResult<Option<MessageDetail>> {
        let row = sqlx::query(
            "SELECT id, response_type, login_id, request_id, tag, created_at, payload FROM messages
             WHERE instance_id = ? AND id = ?",
        )
        .bind(instance.0)
        .bind(id.as_str())
        .fetch_optional(&self.reader)
        .await?;
        match row {
            Some(row) => Ok(Some(self.detail_of(&row).await?)),
            None => Ok(None),
        }
    }

    async fn login_messages(&self, instance: InstanceId, login_id: &str) -> StoreResult<Vec<MessageDetail>> {
        let rows = sqlx::query(
            "SELECT id, response_type, login_id, request_id, tag, created_at, payload FROM messages
             WHERE instance_id = ? AND login_id = ? ORDER BY id",
        )
        .bind(instance.0)
        .bind(login_id)
        .fetch_all(&self.reader)
        .await?;
        let mut details = Vec::with_capacity(rows.len());
        for row in &rows {
            details.push(self.detail_of(row).await?);
        }
        Ok(details)
    }

    async fn redeliver(
        &self,
        instance: InstanceId,
        id: &MessageId,
        endpoint: Option<&EndpointId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<DeliveryId>>> {
        let mut tx = self.writer.begin().await?;
        let Some(response_type) =
            sqlx::query_scalar::<_, String>("SELECT response_type FROM messages WHERE instance_id = ? AND id = ?")
                .bind(instance.0)
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let response_type = ResponseType::parse(&response_type).ok_or_else(|| corrupt(&response_type))?;
        let targets = match endpoint {
            Some(endpoint) => {
                let exists = sqlx::query("SELECT 1 FROM endpoints WHERE instance_id = ? AND id = ?")
                    .bind(instance.0)
                    .bind(endpoint.as_str())
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some();
                if !exists {
                    return Ok(None);
                }
                vec![endpoint.clone()]
            }
            None => subscribed_endpoints(&mut tx, instance, response_type).await?,
        };
        let ids = schedule_deliveries(&mut tx, id, &targets, now).await?;
        tx.commit().await?;
        Ok(Some(ids))
    }
}
