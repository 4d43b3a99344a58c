//! The shared store: PostgreSQL, for running several `finhook serve` nodes on one database.
//!
//! Same model and row mapping as the embedded store. Differences that matter: there is no
//! single-process lock, so claims are taken with `FOR UPDATE SKIP LOCKED` and a crashed
//! node's claims are recovered when their lease expires (never by a blanket release); and
//! PostgreSQL's own group commit replaces the embedded store's batch writer.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::flinks::ResponseType;
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};
use finhook_core::seal::SealingKey;
use finhook_core::secret::{EndpointSecret, KeyHash};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use super::*;

mod messages;
mod queue;
mod sandbox;

use super::rows::*;
use messages::{ingest_on, schedule_deliveries, subscribed_endpoints};

const CONNECTIONS: u32 = 16;

#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Seals endpoint secrets at rest; every node must share it.
    sealing: SealingKey,
}

/// Why the shared store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PgOpenError {
    #[error("could not connect to {url}")]
    Connect { url: String, source: sqlx::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PgStore {
    /// Connects to `url` (`postgres://user:pass@host/db`) and applies the migrations.
    pub async fn open(url: &str, sealing: SealingKey) -> Result<Self, PgOpenError> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| PgOpenError::Connect { url: redact_password(url), source })?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await.map_err(StoreError::from)?;
        Ok(Self { pool, sealing })
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

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        // A committed write, not a read: a full disk or a read-only server still answers reads.
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('store.write_probe', $1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(Utc::now().timestamp_millis().to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn purge_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        let finished = "SELECT m.id FROM messages m WHERE m.created_at < $1
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
        let messages: i64 = sqlx::query_scalar("SELECT count(*) FROM messages").fetch_one(&self.pool).await?;
        let mut deliveries_by_status = Vec::new();
        for status in
            [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed, DeliveryStatus::Cancelled]
        {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE status = $1")
                .bind(status.as_str())
                .fetch_one(&self.pool)
                .await?;
            deliveries_by_status.push((status, count));
        }
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT min(d.next_attempt_at) FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.status = 'pending' AND e.enabled AND d.next_attempt_at <= $1",
        )
        .bind(millis(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(StoreStats { messages, deliveries_by_status, oldest_due_at: oldest.map(time_of).transpose()? })
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await?)
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        let result = sqlx::query(&format!(
            "INSERT INTO instances (name, customer_id, mode, api_key_hash, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING {INSTANCE_COLUMNS}"
        ))
        .bind(&new.name)
        .bind(&new.customer_id)
        .bind(new.mode.as_str())
        .bind(new.api_key_hash.as_str())
        .bind(millis(new.now))
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(row) => instance_from(&row),
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict("an instance with this name")),
            Err(error) => Err(error.into()),
        }
    }

    async fn instance_by_name(&self, name: &str) -> StoreResult<Option<Instance>> {
        sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(instance_from)
            .transpose()
    }

    async fn instance_by_key_hash(&self, hash: &KeyHash) -> StoreResult<Option<Instance>> {
        sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE api_key_hash = $1"))
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(instance_from)
            .transpose()
    }

    async fn set_instance_key_hash(&self, instance: InstanceId, hash: &KeyHash) -> StoreResult<()> {
        sqlx::query("UPDATE instances SET api_key_hash = $1 WHERE id = $2")
            .bind(hash.as_str())
            .bind(instance.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn instance_key_matches(&self, instance: InstanceId, hash: &KeyHash) -> StoreResult<bool> {
        Ok(sqlx::query("SELECT 1 FROM instances WHERE id = $1 AND api_key_hash = $2")
            .bind(instance.0)
            .bind(hash.as_str())
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    async fn list_instances(&self) -> StoreResult<Vec<Instance>> {
        sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY name"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(instance_from)
            .collect()
    }

    async fn create_endpoint(&self, instance: InstanceId, new: NewEndpoint) -> StoreResult<Endpoint> {
        let id = EndpointId::generate();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "INSERT INTO endpoints (id, instance_id, url, description, event_types, max_attempts, interval_seconds,
                                    backoff, success, enabled, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(id.as_str())
        .bind(instance.0)
        .bind(&new.url)
        .bind(&new.description)
        .bind(event_types_to_json(&new.event_types))
        .bind(i64::from(new.retry.max_attempts))
        .bind(i64::from(new.retry.interval_seconds))
        .bind(backoff_str(new.retry.backoff))
        .bind(new.success.as_str())
        .bind(new.enabled)
        .bind(millis(new.now))
        .bind(millis(new.now))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(self.sealing.seal(new.secret.expose(), id.as_str()))
            .bind(millis(new.now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        endpoint_from(&row)
    }

    async fn endpoint(&self, instance: InstanceId, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = $1 AND id = $2"))
            .bind(instance.0)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(endpoint_from)
            .transpose()
    }

    async fn list_endpoints(&self, instance: InstanceId) -> StoreResult<Vec<Endpoint>> {
        sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = $1 ORDER BY id"))
            .bind(instance.0)
            .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let Some(row) =
            sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = $1 AND id = $2"))
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
            "UPDATE endpoints SET url = $1, description = $2, event_types = $3, max_attempts = $4, interval_seconds = $5,
                    backoff = $6, success = $7, enabled = $8, updated_at = $9
             WHERE id = $10",
        )
        .bind(&endpoint.url)
        .bind(&endpoint.description)
        .bind(event_types_to_json(&endpoint.event_types))
        .bind(i64::from(endpoint.retry.max_attempts))
        .bind(i64::from(endpoint.retry.interval_seconds))
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
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM endpoints WHERE instance_id = $1 AND id = $2")
            .bind(instance.0)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $1
             WHERE endpoint_id = $2 AND status = 'pending'",
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
        let mut tx = self.pool.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM endpoints WHERE instance_id = $1 AND id = $2")
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
        sqlx::query("DELETE FROM endpoint_secrets WHERE endpoint_id = $1 AND expires_at <= $2")
            .bind(id.as_str())
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE endpoint_secrets SET expires_at = LEAST(COALESCE(expires_at, $1), $1) WHERE endpoint_id = $2",
        )
        .bind(millis(old_expires_at))
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(self.sealing.seal(secret.expose(), id.as_str()))
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn ingest(&self, message: NewMessage) -> StoreResult<IngestOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = ingest_on(&mut tx, message).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_messages(&self, instance: InstanceId, filter: &MessageFilter) -> StoreResult<Vec<MessageSummary>> {
        let rows = sqlx::query(
            "SELECT id, response_type, login_id, request_id, tag, created_at,
                    (SELECT string_agg(status, ',' ORDER BY d.id) FROM deliveries d WHERE d.message_id = m.id) AS statuses
             FROM messages m
             WHERE instance_id = $1
               AND ($2 IS NULL OR login_id = $2)
               AND ($3 IS NULL OR response_type = $3)
               AND ($4 IS NULL OR id < $4)
               AND ($5 IS NULL OR EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status = $5))
             ORDER BY id DESC LIMIT $6",
        )
        .bind(instance.0)
        .bind(&filter.login_id)
        .bind(filter.response_type.map(|t| t.as_str()))
        .bind(filter.before.as_ref().map(|id| id.as_str()))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(listed_from).collect()
    }

    async fn message(&self, instance: InstanceId, id: &MessageId) -> StoreResult<Option<MessageDetail>> {
        let row = sqlx::query(
            "SELECT id, response_type, login_id, request_id, tag, created_at, payload FROM messages
             WHERE instance_id = $1 AND id = $2",
        )
        .bind(instance.0)
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(self.detail_of(&row).await?)),
            None => Ok(None),
        }
    }

    async fn login_messages(&self, instance: InstanceId, login_id: &str) -> StoreResult<Vec<MessageDetail>> {
        let rows = sqlx::query(
            "SELECT id, response_type, login_id, request_id, tag, created_at, payload FROM messages
             WHERE instance_id = $1 AND login_id = $2 ORDER BY id",
        )
        .bind(instance.0)
        .bind(login_id)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let Some(response_type) =
            sqlx::query_scalar::<_, String>("SELECT response_type FROM messages WHERE instance_id = $1 AND id = $2")
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
                let exists = sqlx::query("SELECT 1 FROM endpoints WHERE instance_id = $1 AND id = $2")
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
