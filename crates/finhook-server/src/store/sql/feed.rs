//! The catch-up feed, written once for both databases (see [`crate::store::feed`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{AttemptId, DeliveryId, EndpointId, MessageId};

use super::SqlStore;
use crate::store::db::{placeholders, sql, Sql};
use crate::store::feed::{Acknowledged, FeedPage, FeedQuery, FeedStore, FEED_WINDOW, MAX_FEED, SETTLE};
use crate::store::rows::{corrupt, millis, Cols};
use crate::store::{AttemptRecord, AttemptResult, DeliveryStatus, InstanceId, LedgerSource, StoreResult};

/// What an acknowledged delivery's attempt says in place of an answer.
pub const ACKNOWLEDGED: &str = "acknowledged by the receiver through the catch-up feed; no request was made";

#[async_trait]
impl FeedStore for SqlStore {
    async fn feed(&self, instance: InstanceId, query: &FeedQuery, now: DateTime<Utc>) -> StoreResult<FeedPage> {
        let limit = query.limit.clamp(1, MAX_FEED) as usize;
        // The window: the instance's settled messages after the cursor, through
        // `messages_by_instance` (or `messages_by_login`), each with whether it is open.
        let rows = self
            .pools
            .read_all(
                // `count` is a 64-bit integer in both databases (a `CASE` of literals is not).
                sql("SELECT m.id,
                            (SELECT count(*) FROM deliveries d
                             WHERE d.message_id = m.id AND NOT d.superseded
                               AND d.status IN ('pending', 'failed') AND ($6 IS NULL OR d.endpoint_id = $6)) AS open
                     FROM messages m
                     WHERE m.instance_id = $1 AND ($2 IS NULL OR m.id > $2) AND m.created_at <= $3
                       AND ($4 IS NULL OR m.login_id = $4)
                     ORDER BY m.id LIMIT $5")
                .bind(instance.0)
                .bind(query.after.as_ref().map(|id| id.as_str().to_string()))
                .bind(millis(now - SETTLE))
                .bind(query.login_id.clone())
                .bind(i64::from(FEED_WINDOW))
                .bind(query.endpoint.as_ref().map(|id| id.as_str().to_string())),
            )
            .await?;
        let mut page = FeedPage { messages: Vec::new(), cursor: query.after.clone(), more: false };
        for (n, row) in rows.iter().enumerate() {
            let id = MessageId::parse(&row.text("id")?).map_err(corrupt)?;
            if !query.undelivered || row.int("open")? > 0 {
                page.messages.push(id.clone());
            }
            page.cursor = Some(id);
            if page.messages.len() == limit {
                page.more = n + 1 < rows.len() || rows.len() == FEED_WINDOW as usize;
                return Ok(page);
            }
        }
        page.more = rows.len() == FEED_WINDOW as usize;
        Ok(page)
    }

    async fn acknowledge(
        &self,
        instance: InstanceId,
        messages: &[MessageId],
        endpoint: Option<&EndpointId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Acknowledged> {
        let mut ids: Vec<&str> = messages.iter().map(MessageId::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        let known = conn
            .fetch_all(
                sql(format!(
                    "SELECT id FROM messages WHERE instance_id = $1 AND id IN ({})",
                    placeholders(2, ids.len())
                ))
                .bind(instance.0)
                .bind_each(ids.iter().copied()),
            )
            .await?;
        let known: std::collections::HashSet<String> =
            known.iter().map(|row| row.text("id")).collect::<Result<_, _>>()?;
        if let Some(unknown) = messages.iter().find(|id| !known.contains(id.as_str())) {
            return Ok(Acknowledged::Unknown(unknown.clone())); // rolled back on drop
        }
        let open = conn
            .fetch_all(
                sql(format!(
                    "SELECT d.id, d.message_id, d.endpoint_id, d.attempts_made, m.body_sha256,
                            COALESCE(e.url, '') AS url
                     FROM deliveries d JOIN messages m ON m.id = d.message_id
                          LEFT JOIN endpoints e ON e.id = d.endpoint_id
                     WHERE ($1 IS NULL OR d.endpoint_id = $1) AND d.message_id IN ({})
                       AND NOT d.superseded AND d.status IN ('pending', 'failed')
                     ORDER BY d.message_id, d.id",
                    placeholders(2, ids.len())
                ))
                .bind(endpoint.map(|id| id.as_str().to_string()))
                .bind_each(ids.iter().copied()),
            )
            .await?;
        let mut records = Vec::with_capacity(open.len());
        for row in &open {
            let made = u32::try_from(row.int("attempts_made")?).map_err(corrupt)?;
            records.push(AttemptResult {
                delivery_id: DeliveryId::parse(&row.text("id")?).map_err(corrupt)?,
                endpoint_id: EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?,
                ledger: LedgerSource {
                    instance_id: instance,
                    message_id: MessageId::parse(&row.text("message_id")?).map_err(corrupt)?,
                    body_sha256: row.text("body_sha256")?,
                    endpoint_url: row.text("url")?,
                },
                attempt: AttemptRecord {
                    id: AttemptId::generate(),
                    attempt_number: made + 1,
                    started_at: now,
                    latency_ms: 0,
                    status_code: None,
                    error_class: None,
                    error_detail: Some(ACKNOWLEDGED.to_string()),
                    response_excerpt: None,
                    response_bytes: None,
                    succeeded: true,
                },
                next_attempt_at: None,
                new_status: DeliveryStatus::Delivered,
            });
        }
        for record in &records {
            conn.execute_all(acknowledged_statements(record)).await?;
        }
        let chained: Vec<&AttemptResult> = records.iter().collect();
        super::ledger::chain_recorded(&mut conn, &chained).await?;
        tx.commit().await?;
        let done = messages
            .iter()
            .map(|id| {
                let count = records.iter().filter(|r| r.ledger.message_id == *id).count();
                (id.clone(), u32::try_from(count).unwrap_or(u32::MAX))
            })
            .collect();
        Ok(Acknowledged::Done(done))
    }
}

/// The attempt that records an acknowledgement, and its delivery marked delivered (pending
/// or failed alike; a cancelled one stays cancelled).
fn acknowledged_statements(record: &AttemptResult) -> Vec<Sql> {
    let attempt = &record.attempt;
    vec![
        super::queue::insert_attempt(&record.delivery_id, attempt.clone()),
        sql("UPDATE deliveries SET status = 'delivered', attempts_made = $1, next_attempt_at = NULL,
                                   claimed_until = NULL, updated_at = $2
             WHERE id = $3 AND status IN ('pending', 'failed')")
        .bind(i64::from(attempt.attempt_number))
        .bind(millis(attempt.started_at))
        .bind(record.delivery_id.as_str()),
    ]
}
