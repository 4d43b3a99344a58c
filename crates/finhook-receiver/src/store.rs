//! The receiver's durable store: one SQLite file (WAL, `synchronous = FULL`), so a 200
//! is only ever sent for a callback that is on disk.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use finhook_core::events::EventBody;
use finhook_core::flinks::ResponseType;
use serde_json::value::RawValue;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::conciliation::{conciliate, Conciliation, LoginSummary, StoredCallback};

/// Why the receiver store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{url:?} is not a valid sqlite:// URL")]
    Url { url: String, source: sqlx::Error },
    #[error("the receiver database failed")]
    Database(#[from] sqlx::Error),
    #[error("the receiver database could not be migrated")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("a stored row is corrupt: {0}")]
    Corrupt(String),
}

/// A verified, parsed callback about to be stored.
#[derive(Debug, Clone)]
pub struct NewCallback {
    pub dedup_key: String,
    pub webhook_id: Option<String>,
    pub response_type: ResponseType,
    pub login_id: Option<String>,
    pub request_id: Option<String>,
    pub tag: Option<String>,
    pub received_at: DateTime<Utc>,
    pub body: Vec<u8>,
    /// False while a `--forward-to` app still has to accept it.
    pub forwarded: bool,
}

/// A verified operational event of finhook's about to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub dedup_key: String,
    pub webhook_id: Option<String>,
    pub event: EventBody,
    pub received_at: DateTime<Utc>,
    pub body: Vec<u8>,
    pub forwarded: bool,
}

/// A stored event, as `GET /events` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub webhook_id: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The event as sent: `type`, `instance`, `endpoint_id`, `message_id`, `at`, `data`.
    pub event: Box<RawValue>,
}

/// What storing a callback (or an event) came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub seq: i64,
    /// The same callback was stored before (a retry or a replay).
    pub duplicate: bool,
    pub forwarded: bool,
}

/// The receiver's schema, embedded in the binary: each of `migrations/*.sql` as the
/// `sqlx::migrate!` macro would embed it (same version, description and checksum), written
/// out so that sqlx's `macros` feature, a second build of sqlx for the host, is not needed.
#[derive(Debug)]
struct Schema;

impl MigrationSource<'static> for Schema {
    fn resolve(
        self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send>>
    {
        let init = include_str!("../migrations/0001_init.sql");
        let events = include_str!("../migrations/0002_events.sql");
        let catch_up = include_str!("../migrations/0003_catch_up.sql");
        Box::pin(async move {
            Ok(vec![
                Migration::new(1, "init".into(), MigrationType::Simple, init.into(), false),
                Migration::new(2, "events".into(), MigrationType::Simple, events.into(), false),
                Migration::new(3, "catch up".into(), MigrationType::Simple, catch_up.into(), false),
            ])
        })
    }
}

#[derive(Debug, Clone)]
pub struct ReceiverStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl ReceiverStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::Url { url: url.to_string(), source })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        Migrator::new(Schema).await?.run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, reader })
    }

    /// Stores a callback unless its dedup key is known; either way, returns its row.
    pub async fn insert(&self, callback: &NewCallback) -> Result<Stored, StoreError> {
        // An explicit transaction, not autocommit: with `RETURNING`, SQLite hands the row
        // over at the first step and commits only when the statement is reset, and an error
        // there (a full disk) never reaches sqlx. `COMMIT` reports it, so 200 means stored.
        let mut tx = self.writer.begin().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO callbacks (dedup_key, webhook_id, response_type, login_id, request_id, tag, received_at, body, forwarded)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (dedup_key) DO NOTHING RETURNING seq",
        )
        .bind(&callback.dedup_key)
        .bind(&callback.webhook_id)
        .bind(callback.response_type.as_str())
        .bind(&callback.login_id)
        .bind(&callback.request_id)
        .bind(&callback.tag)
        .bind(callback.received_at.timestamp_millis())
        .bind(&callback.body)
        .bind(callback.forwarded)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        self.stored("callbacks", inserted, &callback.dedup_key, callback.forwarded).await
    }

    /// The row just inserted into `table` (`inserted`), or the one its dedup key found.
    async fn stored(
        &self,
        table: &'static str,
        inserted: Option<i64>,
        dedup_key: &str,
        forwarded: bool,
    ) -> Result<Stored, StoreError> {
        if let Some(seq) = inserted {
            return Ok(Stored { seq, duplicate: false, forwarded });
        }
        let row = sqlx::query(&format!("SELECT seq, forwarded FROM {table} WHERE dedup_key = ?"))
            .bind(dedup_key)
            .fetch_one(&self.writer)
            .await?;
        Ok(Stored { seq: row.try_get("seq")?, duplicate: true, forwarded: row.try_get("forwarded")? })
    }

    /// Where the catch-up from `source` (a feed's URL) last stopped, if it ever ran.
    pub async fn catch_up_cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT cursor FROM catch_up WHERE source = ?")
            .bind(source)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// Remembers where the catch-up from `source` stopped.
    pub async fn set_catch_up_cursor(&self, source: &str, cursor: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO catch_up (source, cursor, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
        )
        .bind(source)
        .bind(cursor)
        .bind(at.timestamp_millis())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Stores an event unless its dedup key is known; either way, returns its row.
    pub async fn insert_event(&self, event: &NewEvent) -> Result<Stored, StoreError> {
        // An explicit transaction for the reason `insert` gives.
        let mut tx = self.writer.begin().await?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO events (dedup_key, webhook_id, event_type, instance, endpoint_id, message_id, at, received_at,
                                 body, forwarded)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (dedup_key) DO NOTHING RETURNING seq",
        )
        .bind(&event.dedup_key)
        .bind(&event.webhook_id)
        .bind(&event.event.event_type)
        .bind(&event.event.instance)
        .bind(&event.event.endpoint_id)
        .bind(&event.event.message_id)
        .bind(event.event.at.timestamp_millis())
        .bind(event.received_at.timestamp_millis())
        .bind(&event.body)
        .bind(event.forwarded)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        self.stored("events", inserted, &event.dedup_key, event.forwarded).await
    }

    pub async fn mark_event_forwarded(&self, seq: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE events SET forwarded = 1 WHERE seq = ?").bind(seq).execute(&self.writer).await?;
        Ok(())
    }

    /// The last `limit` events received, newest first.
    pub async fn events(&self, limit: u32) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query("SELECT seq, webhook_id, received_at, body FROM events ORDER BY seq DESC LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                let body: Vec<u8> = row.try_get("body")?;
                let text = String::from_utf8(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok(StoredEvent {
                    seq: row.try_get("seq")?,
                    webhook_id: row.try_get("webhook_id")?,
                    received_at: time_of(row.try_get("received_at")?)?,
                    event: RawValue::from_string(text).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect()
    }

    pub async fn mark_forwarded(&self, seq: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE callbacks SET forwarded = 1 WHERE seq = ?").bind(seq).execute(&self.writer).await?;
        Ok(())
    }

    /// Every LoginId seen, most recently active first.
    pub async fn logins(&self) -> Result<Vec<LoginSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT login_id, count(*) AS n, max(received_at) AS last,
                    group_concat(DISTINCT response_type) AS types,
                    (SELECT tag FROM callbacks t WHERE t.login_id = c.login_id AND t.tag IS NOT NULL
                     ORDER BY seq DESC LIMIT 1) AS tag
             FROM callbacks c WHERE login_id IS NOT NULL GROUP BY login_id ORDER BY max(seq) DESC",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let types: String = row.try_get("types")?;
                Ok(LoginSummary {
                    login_id: row.try_get("login_id")?,
                    tag: row.try_get("tag")?,
                    types: ResponseType::ALL
                        .into_iter()
                        .filter(|t| types.split(',').any(|s| s == t.as_str()))
                        .map(|t| t.as_str())
                        .collect(),
                    callbacks: usize::try_from(row.try_get::<i64, _>("n")?).unwrap_or_default(),
                    last_received_at: time_of(row.try_get("last")?)?,
                })
            })
            .collect()
    }

    /// The conciliated view of one LoginId, or `None` if no callback named it.
    pub async fn login(&self, login_id: &str) -> Result<Option<Conciliation>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, response_type, webhook_id, request_id, tag, received_at, body FROM callbacks
             WHERE login_id = ? ORDER BY seq",
        )
        .bind(login_id)
        .fetch_all(&self.reader)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let callbacks = rows.iter().map(stored_from).collect::<Result<Vec<_>, _>>()?;
        Ok(Some(conciliate(login_id, callbacks)))
    }

    /// How many callbacks are stored; for tests and the terminal summary.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM callbacks").fetch_one(&self.reader).await?)
    }
}

fn time_of(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms}")))
}

fn stored_from(row: &SqliteRow) -> Result<StoredCallback, StoreError> {
    let response_type: String = row.try_get("response_type")?;
    let body: Vec<u8> = row.try_get("body")?;
    let text = String::from_utf8(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(StoredCallback {
        seq: row.try_get("seq")?,
        response_type: ResponseType::parse(&response_type).ok_or_else(|| StoreError::Corrupt(response_type.clone()))?,
        webhook_id: row.try_get("webhook_id")?,
        request_id: row.try_get("request_id")?,
        tag: row.try_get("tag")?,
        received_at: time_of(row.try_get("received_at")?)?,
        body: RawValue::from_string(text).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_schema_is_the_whole_migrations_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations folder")
            .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        let mut files = files;
        files.sort();
        assert_eq!(
            files,
            ["0001_init.sql", "0002_events.sql", "0003_catch_up.sql"],
            "embed every new migration in `Schema`"
        );
    }
}
