//! The delivery queue: claims are leases on `deliveries` rows. The claim query is one of the
//! few places where the databases differ (see [`claim_sql`]); the rest is written once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, MessageId};
use finhook_core::secret::EndpointSecret;

use super::{SqlStore, Writes};
use crate::store::db::{sql, Backend, Conn, Sql};
use crate::store::queue::DeliveryQueue;
use crate::store::rows::*;
use crate::store::{AttemptResult, ClaimedDelivery, ErrorClass, StoreResult};

/// Claims the most overdue deliveries first, but never more than `per_endpoint` in flight
/// for one endpoint, so a slow or hanging endpoint cannot take every slot.
///
/// SQLite: the embedded store has one writer connection, so the ranking and the update run
/// alone and need no row locks. PostgreSQL: several nodes claim at once, so the ranked
/// candidates are locked with `FOR UPDATE SKIP LOCKED` and re-checked, and two nodes never
/// claim the same delivery.
fn claim_sql(backend: Backend, now: DateTime<Utc>, claim_until: DateTime<Utc>, limit: u32, per_endpoint: u32) -> Sql {
    const RANKED: &str = "WITH busy AS (
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
                 SELECT id FROM due WHERE in_flight + nth <= $4 ORDER BY next_attempt_at, id LIMIT $3)";
    let text = match backend {
        Backend::Sqlite => format!(
            "UPDATE deliveries SET claimed_until = $1 WHERE id IN ({RANKED} SELECT id FROM picked)
             RETURNING id, message_id, endpoint_id, attempts_made"
        ),
        Backend::Postgres => format!(
            "{RANKED},
             locked AS (
                 SELECT d.id FROM deliveries d JOIN picked p ON p.id = d.id
                 WHERE d.status = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until <= $2)
                 FOR UPDATE OF d SKIP LOCKED)
             UPDATE deliveries SET claimed_until = $1 WHERE id IN (SELECT id FROM locked)
             RETURNING id, message_id, endpoint_id, attempts_made"
        ),
    };
    sql(text).bind(millis(claim_until)).bind(millis(now)).bind(i64::from(limit)).bind(i64::from(per_endpoint))
}

#[async_trait]
impl DeliveryQueue for SqlStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: u32,
        per_endpoint: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        let claimed = conn.fetch_all(claim_sql(self.backend(), now, claim_until, limit, per_endpoint)).await?;
        let mut out = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let endpoint_id = row.text("endpoint_id")?;
            let endpoint = endpoint_from(
                &conn
                    .fetch_one(
                        sql(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1")).bind(&endpoint_id),
                    )
                    .await?,
            )?;
            // The current secret first: it is the one without an end.
            let secrets = conn
                .fetch_all(
                    sql("SELECT secret FROM endpoint_secrets
                         WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)
                         ORDER BY expires_at IS NULL DESC, created_at DESC, expires_at DESC")
                    .bind(&endpoint_id)
                    .bind(millis(now)),
                )
                .await?
                .iter()
                .map(|row| {
                    let secret = self.sealing.open(&row.text("secret")?, &endpoint_id)?;
                    EndpointSecret::parse(&secret).map_err(corrupt)
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let message_id = row.text("message_id")?;
            let payload = conn
                .fetch_one(sql("SELECT payload FROM messages WHERE id = $1").bind(&message_id))
                .await?
                .bytes("payload")?;
            out.push(ClaimedDelivery {
                delivery_id: DeliveryId::parse(&row.text("id")?).map_err(corrupt)?,
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
        match &self.writes {
            Writes::GroupCommit(batch) => batch.record(result).await,
            Writes::Direct => {
                let mut tx = self.pools.begin().await?;
                record_on(&mut tx.conn(), result).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    }

    async fn next_due_at(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let row = self
            .pools
            .read_one(sql(
                "SELECT min(CASE WHEN d.claimed_until > d.next_attempt_at THEN d.claimed_until ELSE d.next_attempt_at END) AS due
                 FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                 WHERE d.status = 'pending' AND e.enabled",
            ))
            .await?;
        row.opt_int("due")?.map(time_of).transpose()
    }
}

/// Records one attempt and reschedules its delivery on `conn` (a transaction, or a
/// savepoint of the embedded store's group commit).
pub(super) async fn record_on(conn: &mut Conn<'_>, result: AttemptResult) -> StoreResult<()> {
    let attempt = result.attempt;
    conn.execute(
        sql("INSERT INTO attempts (id, delivery_id, attempt_number, started_at, latency_ms, status_code, error_class,
                                   error_detail, response_excerpt, response_bytes, succeeded)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(attempt.id.as_str())
        .bind(result.delivery_id.as_str())
        .bind(i64::from(attempt.attempt_number))
        .bind(millis(attempt.started_at))
        .bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error_class.map(ErrorClass::as_str))
        .bind(attempt.error_detail)
        .bind(attempt.response_excerpt)
        .bind(attempt.response_bytes.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
        .bind(attempt.succeeded),
    )
    .await?;
    // A delivery cancelled while the attempt was in flight stays cancelled.
    conn.execute(
        sql("UPDATE deliveries SET status = $1, attempts_made = $2, next_attempt_at = $3, claimed_until = NULL,
                                   updated_at = $4
             WHERE id = $5 AND status = 'pending'")
        .bind(result.new_status.as_str())
        .bind(i64::from(attempt.attempt_number))
        .bind(result.next_attempt_at.map(millis))
        .bind(millis(attempt.started_at))
        .bind(result.delivery_id.as_str()),
    )
    .await?;
    Ok(())
}
