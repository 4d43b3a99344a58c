//! The delivery queue in the shared store: claims are leases on `deliveries` rows, taken
//! with `FOR UPDATE SKIP LOCKED` so that nodes never claim the same delivery.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, MessageId};
use finhook_core::secret::EndpointSecret;
use sqlx::Row;

use super::PgStore;
use crate::store::queue::DeliveryQueue;
use crate::store::rows::{corrupt, endpoint_from, millis, time_of, Cols, ENDPOINT_COLUMNS};
use crate::store::{AttemptResult, ClaimedDelivery, StoreResult};

#[async_trait]
impl DeliveryQueue for PgStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
        per_endpoint: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = self.pool.begin().await?;
        // Claims the most overdue deliveries first, but never more than `per_endpoint` in
        // flight for one endpoint, so a slow or hanging endpoint cannot take every slot.
        // Ranked as in the embedded store; the candidates are then locked with SKIP LOCKED and
        // re-checked, so two nodes never claim the same delivery.
        let claimed = sqlx::query(
            "WITH busy AS (
                 SELECT endpoint_id, count(*) AS n FROM deliveries
                 WHERE status = 'pending' AND claimed_until > $2 GROUP BY endpoint_id),
             due AS (
                 SELECT d.id, d.next_attempt_at, coalesce(b.n, 0) AS in_flight,
                        row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS nth
                 FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                 LEFT JOIN busy b ON b.endpoint_id = d.endpoint_id
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $2
                   AND (d.claimed_until IS NULL OR d.claimed_until <= $2) AND e.enabled),
             picked AS (
                 SELECT id FROM due WHERE in_flight + nth <= $4 ORDER BY next_attempt_at, id LIMIT $3),
             locked AS (
                 SELECT d.id FROM deliveries d JOIN picked p ON p.id = d.id
                 WHERE d.status = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until <= $2)
                 FOR UPDATE OF d SKIP LOCKED)
             UPDATE deliveries SET claimed_until = $1
             WHERE id IN (SELECT id FROM locked)
             RETURNING id, message_id, endpoint_id, attempts_made",
        )
        .bind(millis(claim_until))
        .bind(millis(now))
        .bind(i64::from(limit))
        .bind(i64::from(per_endpoint))
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let endpoint_id: String = row.try_get("endpoint_id")?;
            let endpoint_row = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1"))
                .bind(&endpoint_id)
                .fetch_one(&mut *tx)
                .await?;
            let endpoint = endpoint_from(&endpoint_row)?;
            let secrets = sqlx::query_scalar::<_, String>(
                "SELECT secret FROM endpoint_secrets WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)
                 ORDER BY created_at DESC, seq DESC",
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
            let payload: Vec<u8> = sqlx::query_scalar("SELECT payload FROM messages WHERE id = $1")
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
        let mut tx = self.pool.begin().await?;
        record_on(&mut tx, result).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn next_due_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT min(GREATEST(d.next_attempt_at, COALESCE(d.claimed_until, 0))) FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.status = 'pending' AND e.enabled",
        )
        .fetch_one(&self.pool)
        .await?;
        due.map(time_of).transpose()
    }
}

/// Records one attempt and reschedules its delivery on `tx` (a savepoint of a batch).
pub(super) async fn record_on(tx: &mut sqlx::PgConnection, result: AttemptResult) -> StoreResult<()> {
    let attempt = &result.attempt;
    sqlx::query(
        "INSERT INTO attempts (id, delivery_id, attempt_number, started_at, latency_ms, status_code, error_class,
                               error_detail, response_excerpt, response_bytes, succeeded)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(attempt.id.as_str())
    .bind(result.delivery_id.as_str())
    .bind(i64::from(attempt.attempt_number))
    .bind(millis(attempt.started_at))
    .bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
    .bind(attempt.status_code.map(i64::from))
    .bind(&attempt.error_class)
    .bind(&attempt.error_detail)
    .bind(&attempt.response_excerpt)
    .bind(attempt.response_bytes.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
    .bind(attempt.succeeded)
    .execute(&mut *tx)
    .await?;
    // A delivery cancelled while the attempt was in flight stays cancelled.
    sqlx::query(
        "UPDATE deliveries SET status = $1, attempts_made = $2, next_attempt_at = $3, claimed_until = NULL, updated_at = $4
         WHERE id = $5 AND status = 'pending'",
    )
    .bind(result.new_status.as_str())
    .bind(i64::from(attempt.attempt_number))
    .bind(result.next_attempt_at.map(millis))
    .bind(millis(attempt.started_at))
    .bind(result.delivery_id.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
