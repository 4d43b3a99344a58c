//! The delivery queue in the embedded store: claims are leases on `deliveries` rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, MessageId};
use finhook_core::secret::EndpointSecret;
use sqlx::Row;

use super::SqliteStore;
use crate::store::queue::DeliveryQueue;
use crate::store::rows::{corrupt, endpoint_from, millis, time_of, Cols, ENDPOINT_COLUMNS};
use crate::store::{AttemptResult, ClaimedDelivery, StoreResult};

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
        per_endpoint: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = self.writer.begin().await?;
        // Claims the most overdue deliveries first, but never more than `per_endpoint` in
        // flight for one endpoint, so a slow or hanging endpoint cannot take every slot.
        let claimed = sqlx::query(
            "UPDATE deliveries SET claimed_until = ?1
             WHERE id IN (
                 WITH busy AS (
                     SELECT endpoint_id, count(*) AS n FROM deliveries
                     WHERE status = 'pending' AND claimed_until > ?2 GROUP BY endpoint_id),
                 due AS (
                     SELECT d.id, d.next_attempt_at, coalesce(b.n, 0) AS in_flight,
                            row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS nth
                     FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                     LEFT JOIN busy b ON b.endpoint_id = d.endpoint_id
                     WHERE d.status = 'pending' AND d.next_attempt_at <= ?2
                       AND (d.claimed_until IS NULL OR d.claimed_until <= ?2) AND e.enabled = 1)
                 SELECT id FROM due WHERE in_flight + nth <= ?4 ORDER BY next_attempt_at, id LIMIT ?3)
             RETURNING id, message_id, endpoint_id, attempts_made",
        )
        .bind(millis(claim_until))
        .bind(millis(now))
        .bind(limit)
        .bind(per_endpoint)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let endpoint_id: String = row.try_get("endpoint_id")?;
            let endpoint_row = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = ?"))
                .bind(&endpoint_id)
                .fetch_one(&mut *tx)
                .await?;
            let endpoint = endpoint_from(&endpoint_row)?;
            let secrets = sqlx::query_scalar::<_, String>(
                "SELECT secret FROM endpoint_secrets WHERE endpoint_id = ? AND (expires_at IS NULL OR expires_at > ?)
                 ORDER BY created_at DESC, rowid DESC",
            )
            .bind(&endpoint_id)
            .bind(millis(now))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|sealed| {
                let secret = self.sealing.open(sealed, &endpoint_id)?;
                EndpointSecret::parse(&secret).map_err(corrupt)
            })
            .collect::<StoreResult<Vec<_>>>()?;
            let message_id: String = row.try_get("message_id")?;
            let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM messages WHERE id = ?")
                .bind(&message_id)
                .fetch_one(&mut *tx)
                .await?;
            out.push(ClaimedDelivery {
                delivery_id: DeliveryId::parse(row.try_get("id")?).map_err(corrupt)?,
                message_id: MessageId::parse(&message_id).map_err(corrupt)?,
                endpoint_id: endpoint.id,
                attempt_number: u32::try_from(row.int("attempts_made")? + 1).map_err(corrupt)?,
                url: endpoint.url,
                retry: endpoint.retry,
                success: endpoint.success,
                secrets,
                payload,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn record_attempt(&self, result: AttemptResult) -> StoreResult<()> {
        self.batch.record(result).await
    }

    async fn next_due_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT min(max(d.next_attempt_at, coalesce(d.claimed_until, 0))) FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.status = 'pending' AND e.enabled = 1",
        )
        .fetch_one(&self.reader)
        .await?;
        due.map(time_of).transpose()
    }
}

/// Records one attempt and reschedules its delivery on `tx` (a savepoint of a batch).
pub(super) async fn record_on(tx: &mut sqlx::SqliteConnection, result: AttemptResult) -> StoreResult<()> {
    let attempt = &result.attempt;
    sqlx::query(
        "INSERT INTO attempts (id, delivery_id, attempt_number, started_at, latency_ms, status_code, error_class,
                               error_detail, response_excerpt, response_bytes, succeeded)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(attempt.id.as_str())
    .bind(result.delivery_id.as_str())
    .bind(attempt.attempt_number)
    .bind(millis(attempt.started_at))
    .bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
    .bind(attempt.status_code)
    .bind(&attempt.error_class)
    .bind(&attempt.error_detail)
    .bind(&attempt.response_excerpt)
    .bind(attempt.response_bytes.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
    .bind(attempt.succeeded)
    .execute(&mut *tx)
    .await?;
    // A delivery cancelled while the attempt was in flight stays cancelled.
    sqlx::query(
        "UPDATE deliveries SET status = ?, attempts_made = ?, next_attempt_at = ?, claimed_until = NULL, updated_at = ?
         WHERE id = ? AND status = 'pending'",
    )
    .bind(result.new_status.as_str())
    .bind(attempt.attempt_number)
    .bind(result.next_attempt_at.map(millis))
    .bind(millis(attempt.started_at))
    .bind(result.delivery_id.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl SqliteStore {
    /// Releases every claim: only safe because the lock file proves no other process can
    /// hold one. Called at start-up, so attempts a crash interrupted are made again at once.
    pub async fn release_all_claims(&self) -> StoreResult<u64> {
        Ok(sqlx::query("UPDATE deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL")
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}
