//! Bulk recovery's table, written once for both databases (see [`crate::store::recovery`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId, MessageId, RecoveryId};

use super::SqlStore;
use crate::store::db::{sql, Sql};
use crate::store::recovery::{Recovery, RecoveryStatus, RecoveryStore, RECOVER_BATCH};
use crate::store::rows::{corrupt, millis, time_of, Cols};
use crate::store::{InstanceId, StoreResult};

const RECOVERY_COLUMNS: &str =
    "id, instance_id, endpoint_id, since, until, status, total, resent, error, created_at, finished_at";

/// The deliveries a job covers that are still failed: `SELECT {columns}` of them, then
/// `rest` (an order and a limit).
fn still_failed(
    columns: &str,
    rest: &str,
    instance: InstanceId,
    endpoint: Option<&str>,
    since: i64,
    until: i64,
) -> Sql {
    sql(format!(
        "SELECT {columns} FROM deliveries d JOIN messages m ON m.id = d.message_id
         WHERE d.status = 'failed' AND NOT d.superseded AND d.updated_at >= $2 AND d.updated_at <= $3
           AND m.instance_id = $1 AND ($4 IS NULL OR d.endpoint_id = $4) {rest}"
    ))
    .bind(instance.0)
    .bind(since)
    .bind(until)
    .bind(endpoint.map(str::to_string))
}

#[async_trait]
impl RecoveryStore for SqlStore {
    async fn start_recovery(
        &self,
        instance: InstanceId,
        endpoint: Option<&EndpointId>,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Recovery> {
        let id = RecoveryId::generate();
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        let endpoint_id = endpoint.map(EndpointId::as_str);
        let counted = conn
            .fetch_one(still_failed("count(*) AS n", "", instance, endpoint_id, millis(since), millis(until)))
            .await?;
        let total = counted.int("n")?;
        let row = conn
            .fetch_one(
                sql(format!(
                    "INSERT INTO recoveries ({RECOVERY_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, 'running', $6, 0, NULL, $7, NULL)
                     RETURNING {RECOVERY_COLUMNS}"
                ))
                .bind(id.as_str())
                .bind(instance.0)
                .bind(endpoint_id.map(str::to_string))
                .bind(millis(since))
                .bind(millis(until))
                .bind(total)
                .bind(millis(now)),
            )
            .await?;
        tx.commit().await?;
        recovery_from(&row)
    }

    async fn recover_batch(&self, id: &RecoveryId, now: DateTime<Utc>) -> StoreResult<usize> {
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        let Some(job) = conn
            .fetch_optional(sql(format!("SELECT {RECOVERY_COLUMNS} FROM recoveries WHERE id = $1")).bind(id.as_str()))
            .await?
        else {
            return Ok(0);
        };
        let job = recovery_from(&job)?;
        let endpoint = job.endpoint_id.as_ref().map(EndpointId::as_str);
        let (columns, rest) =
            ("d.id, d.message_id, d.endpoint_id, d.sequence", format!("ORDER BY d.id LIMIT {RECOVER_BATCH}"));
        let pick = still_failed(columns, &rest, job.instance_id, endpoint, millis(job.since), millis(job.until));
        let rows = conn.fetch_all(pick).await?;
        let mut resent = 0;
        for row in &rows {
            // Only if no one re-sent it meanwhile (another node running the same job).
            let superseded = conn
                .execute(
                    sql("UPDATE deliveries SET superseded = TRUE, updated_at = $2 WHERE id = $1 AND NOT superseded")
                        .bind(row.text("id")?)
                        .bind(millis(now)),
                )
                .await?;
            if superseded == 0 {
                continue;
            }
            let (message, endpoint) = (
                MessageId::parse(&row.text("message_id")?).map_err(corrupt)?,
                EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?,
            );
            conn.execute(
                // The same callback again: it keeps its `webhook-sequence`.
                sql("INSERT INTO deliveries (id, message_id, endpoint_id, status, next_attempt_at, created_at, updated_at,
                                             sequence, login_id)
                     VALUES ($1, $2, $3, 'pending', $4, $4, $4, $5,
                             CASE WHEN $5 IS NOT NULL THEN (SELECT login_id FROM messages WHERE id = $2) END)")
                .bind(DeliveryId::generate().as_str())
                .bind(message.as_str())
                .bind(endpoint.as_str())
                .bind(millis(now))
                .bind(row.opt_int("sequence")?),
            )
            .await?;
            resent += 1;
        }
        if resent > 0 {
            conn.execute(
                sql("UPDATE recoveries SET resent = resent + $2 WHERE id = $1").bind(id.as_str()).bind(resent as i64),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }

    async fn finish_recovery(&self, id: &RecoveryId, error: Option<&str>, now: DateTime<Utc>) -> StoreResult<()> {
        let status = if error.is_some() { RecoveryStatus::Failed } else { RecoveryStatus::Done };
        self.pools
            .write(
                sql("UPDATE recoveries SET status = $2, error = $3, finished_at = $4 WHERE id = $1 AND status = 'running'")
                    .bind(id.as_str())
                    .bind(status.as_str())
                    .bind(error.map(str::to_string))
                    .bind(millis(now)),
            )
            .await?;
        Ok(())
    }

    async fn recovery(&self, instance: InstanceId, id: &RecoveryId) -> StoreResult<Option<Recovery>> {
        let row = self
            .pools
            .read_optional(
                sql(format!("SELECT {RECOVERY_COLUMNS} FROM recoveries WHERE id = $1 AND instance_id = $2"))
                    .bind(id.as_str())
                    .bind(instance.0),
            )
            .await?;
        row.as_ref().map(recovery_from).transpose()
    }

    async fn running_recoveries(&self) -> StoreResult<Vec<RecoveryId>> {
        let rows = self.pools.read_all(sql("SELECT id FROM recoveries WHERE status = 'running' ORDER BY id")).await?;
        rows.iter().map(|row| RecoveryId::parse(&row.text("id")?).map_err(corrupt)).collect()
    }
}

fn recovery_from(row: &impl Cols) -> StoreResult<Recovery> {
    let status = row.text("status")?;
    Ok(Recovery {
        id: RecoveryId::parse(&row.text("id")?).map_err(corrupt)?,
        instance_id: InstanceId(row.int("instance_id")?),
        endpoint_id: row.opt_text("endpoint_id")?.map(|id| EndpointId::parse(&id).map_err(corrupt)).transpose()?,
        since: time_of(row.int("since")?)?,
        until: time_of(row.int("until")?)?,
        status: RecoveryStatus::parse(&status).ok_or_else(|| corrupt(&status))?,
        total: row.int("total")?.max(0).unsigned_abs(),
        resent: row.int("resent")?.max(0).unsigned_abs(),
        error: row.opt_text("error")?,
        created_at: time_of(row.int("created_at")?)?,
        finished_at: row.opt_int("finished_at")?.map(time_of).transpose()?,
    })
}
