//! Endpoint health's table, written once for both databases (see
//! [`crate::store::health`]).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use finhook_core::ids::EndpointId;

use super::SqlStore;
use crate::store::db::{sql, Sql};
use crate::store::events::EventStore;
use crate::store::health::{EndpointHealth, EndpointMinute, HealthStore, Window, LATENCY_BOUNDS_MS};
use crate::store::rows::{corrupt, millis, time_of, Cols};
use crate::store::{ErrorClass, InstanceId, StoreResult};

/// The histogram's columns, in [`LATENCY_BOUNDS_MS`] order.
fn latency_columns() -> impl Iterator<Item = String> {
    LATENCY_BOUNDS_MS.iter().map(|bound| format!("l{bound}"))
}

/// The counted columns: attempts, succeeded, then the histogram.
fn counted_columns() -> Vec<String> {
    ["attempts".to_string(), "succeeded".to_string()].into_iter().chain(latency_columns()).collect()
}

fn minute_of(time: DateTime<Utc>) -> i64 {
    time.timestamp().div_euclid(60)
}

#[async_trait]
impl HealthStore for SqlStore {
    async fn add_endpoint_minutes(&self, minutes: &[EndpointMinute]) -> StoreResult<()> {
        if minutes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pools.begin().await?;
        tx.conn().execute_all(minutes.iter().map(added).collect()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn forget_endpoint_minutes(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        Ok(self.pools.write(sql("DELETE FROM endpoint_minutes WHERE minute < $1").bind(minute_of(before))).await?)
    }

    async fn attempts_by_hour(&self, since: DateTime<Utc>) -> StoreResult<Vec<(DateTime<Utc>, u64, u64)>> {
        let rows = self
            .pools
            .read_all(
                sql("SELECT m.minute / 60 AS hour, CAST(sum(m.attempts) AS BIGINT) AS attempts,
                            CAST(sum(m.succeeded) AS BIGINT) AS succeeded
                     FROM endpoint_minutes m WHERE m.minute >= $1 GROUP BY m.minute / 60 ORDER BY hour")
                .bind(minute_of(since)),
            )
            .await?;
        rows.iter()
            .map(|row| {
                let hour = row.int("hour")?;
                let start = DateTime::from_timestamp(hour.saturating_mul(3600), 0).ok_or_else(|| corrupt(hour))?;
                Ok((start, row.int("attempts")?.max(0).unsigned_abs(), row.int("succeeded")?.max(0).unsigned_abs()))
            })
            .collect()
    }

    async fn messages_since(&self, since: DateTime<Utc>) -> StoreResult<u64> {
        let row = self
            .pools
            .read_optional(sql("SELECT count(*) AS n FROM messages WHERE created_at >= $1").bind(millis(since)))
            .await?;
        Ok(row.map(|row| row.int("n")).transpose()?.unwrap_or(0).max(0).unsigned_abs())
    }

    async fn failed_by_instance(&self) -> StoreResult<Vec<(String, u64)>> {
        let rows = self
            .pools
            .read_all(sql("SELECT i.name, count(DISTINCT d.message_id) AS n
                 FROM deliveries d JOIN messages m ON m.id = d.message_id JOIN instances i ON i.id = m.instance_id
                 WHERE d.status = 'failed' AND NOT d.superseded
                 GROUP BY i.name ORDER BY i.name"))
            .await?;
        rows.iter().map(|row| Ok((row.text("name")?, row.int("n")?.max(0).unsigned_abs()))).collect()
    }

    async fn endpoint_health(
        &self,
        instance: Option<InstanceId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<(EndpointId, EndpointHealth)>> {
        let instance_id = instance.map(|instance| instance.0);
        let endpoints = self
            .pools
            .read_all(
                sql("SELECT id FROM endpoints WHERE $1 IS NULL OR instance_id = $1 ORDER BY id").bind(instance_id),
            )
            .await?;
        let mut health: Vec<(EndpointId, EndpointHealth)> = endpoints
            .iter()
            .map(|row| Ok((EndpointId::parse(&row.text("id")?).map_err(corrupt)?, EndpointHealth::default())))
            .collect::<StoreResult<_>>()?;
        let index: HashMap<EndpointId, usize> = health.iter().enumerate().map(|(n, (id, _))| (id.clone(), n)).collect();
        let (hour, day) = (minute_of(now - Duration::hours(1)), minute_of(now - Duration::days(1)));
        for row in &self.pools.read_all(windows_sql(instance_id, hour, day)).await? {
            let Some(&n) = index.get(&EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?) else { continue };
            let window = |prefix: &str| -> StoreResult<Window> {
                let count = |column: &str| row.int(&format!("{prefix}_{column}")).map(|n| n.max(0).unsigned_abs());
                let mut latency = [0; 12];
                for (slot, column) in latency.iter_mut().zip(latency_columns()) {
                    *slot = count(&column)?;
                }
                Ok(Window::of(count("attempts")?, count("succeeded")?, &latency))
            };
            let entry = &mut health[n].1;
            (entry.last_hour, entry.last_day) = (window("h")?, window("d")?);
            entry.last_attempt_at = row.opt_int("last_at")?.map(time_of).transpose()?;
            entry.last_status_code = row.opt_int("last_status_code")?.and_then(|code| u16::try_from(code).ok());
            let class = row.opt_text("last_error_class")?;
            entry.last_error_class =
                class.as_deref().map(|c| ErrorClass::parse(c).ok_or_else(|| corrupt(c))).transpose()?;
        }
        for (endpoint, failing) in self.failing_endpoints(instance).await? {
            if let Some(&n) = index.get(&endpoint) {
                health[n].1.consecutive_failures = failing.failed_attempts_in_row;
                health[n].1.failing_since = Some(failing.since);
            }
        }
        let backlog = self
            .pools
            .read_all(
                sql("SELECT d.endpoint_id, count(*) AS n, min(d.next_attempt_at) AS due
                     FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                     WHERE d.status = 'pending' AND ($1 IS NULL OR e.instance_id = $1)
                     GROUP BY d.endpoint_id")
                .bind(instance_id),
            )
            .await?;
        for row in &backlog {
            let Some(&n) = index.get(&EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?) else { continue };
            health[n].1.backlog = row.int("n")?.max(0).unsigned_abs();
            let due = row.opt_int("due")?.map(time_of).transpose()?;
            health[n].1.oldest_due_at = due.filter(|due| *due <= now);
        }
        Ok(health)
    }
}

/// The statement that adds one node's minute of one endpoint to the stored one.
fn added(minute: &EndpointMinute) -> Sql {
    let counted = counted_columns();
    let columns = counted.join(", ");
    let values = (3..3 + counted.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
    let (at, status, class) = (3 + counted.len(), 4 + counted.len(), 5 + counted.len());
    let sums =
        counted.iter().map(|c| format!("{c} = endpoint_minutes.{c} + excluded.{c}")).collect::<Vec<_>>().join(", ");
    let newer = "excluded.last_at >= endpoint_minutes.last_at";
    let text = format!(
        "INSERT INTO endpoint_minutes (endpoint_id, minute, {columns}, last_at, last_status_code, last_error_class)
         VALUES ($1, $2, {values}, ${at}, ${status}, ${class})
         ON CONFLICT (endpoint_id, minute) DO UPDATE SET {sums},
             last_status_code = CASE WHEN {newer} THEN excluded.last_status_code ELSE endpoint_minutes.last_status_code END,
             last_error_class = CASE WHEN {newer} THEN excluded.last_error_class ELSE endpoint_minutes.last_error_class END,
             last_at = CASE WHEN {newer} THEN excluded.last_at ELSE endpoint_minutes.last_at END"
    );
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let mut statement = sql(text)
        .bind(minute.endpoint_id.as_str())
        .bind(minute.minute)
        .bind(int(minute.attempts))
        .bind(int(minute.succeeded));
    for count in minute.latency {
        statement = statement.bind(int(count));
    }
    statement
        .bind(minute.last_at.map_or(0, millis))
        .bind(minute.last_status_code.map(i64::from))
        .bind(minute.last_error_class.map(ErrorClass::as_str))
}

/// Each endpoint's sums over the last hour (`h_…`) and day (`d_…`), and its latest
/// minute's last outcome.
fn windows_sql(instance: Option<i64>, hour: i64, day: i64) -> Sql {
    let sums = counted_columns()
        .iter()
        .flat_map(|c| {
            // `CAST`: PostgreSQL's `sum` of `BIGINT` is `NUMERIC`.
            [
                format!("CAST(sum(CASE WHEN m.minute >= $2 THEN m.{c} ELSE 0 END) AS BIGINT) AS h_{c}"),
                format!("CAST(sum(m.{c}) AS BIGINT) AS d_{c}"),
            ]
        })
        .collect::<Vec<_>>()
        .join(", ");
    sql(format!(
        "SELECT m.endpoint_id, {sums},
                (SELECT l.last_at FROM endpoint_minutes l WHERE l.endpoint_id = m.endpoint_id ORDER BY l.minute DESC LIMIT 1) AS last_at,
                (SELECT l.last_status_code FROM endpoint_minutes l WHERE l.endpoint_id = m.endpoint_id ORDER BY l.minute DESC LIMIT 1) AS last_status_code,
                (SELECT l.last_error_class FROM endpoint_minutes l WHERE l.endpoint_id = m.endpoint_id ORDER BY l.minute DESC LIMIT 1) AS last_error_class
         FROM endpoint_minutes m JOIN endpoints e ON e.id = m.endpoint_id
         WHERE m.minute >= $3 AND ($1 IS NULL OR e.instance_id = $1)
         GROUP BY m.endpoint_id"
    ))
    .bind(instance)
    .bind(hour)
    .bind(day)
}
