//! One endpoint's activity, written once for both databases (see [`crate::store::activity`]).

use async_trait::async_trait;
use finhook_core::events::MessageType;
use finhook_core::ids::{EndpointId, MessageId};

use super::messages::{message_statements, Subscriptions};
use super::SqlStore;
use crate::store::activity::{ActivityStore, RecentDelivery, RecentPage, MAX_RECENT, WINDOW};
use crate::store::db::sql;
use crate::store::rows::{attempt_from, corrupt, delivery_from, Cols};
use crate::store::{IngestOutcome, InstanceId, NewMessage, StoreResult};

#[async_trait]
impl ActivityStore for SqlStore {
    async fn recent_deliveries(
        &self,
        instance: InstanceId,
        endpoint: &EndpointId,
        before: Option<&MessageId>,
        limit: u32,
    ) -> StoreResult<RecentPage> {
        let limit = limit.clamp(1, MAX_RECENT) as usize;
        let mut reader = self.pools.reader().await?;
        let mut conn = reader.conn();
        // The window: the instance's newest messages older than `before`, from the index.
        let window = conn
            .fetch_all(
                sql("SELECT id FROM messages WHERE instance_id = $1 AND ($2 IS NULL OR id < $2)
                     ORDER BY id DESC LIMIT $3")
                .bind(instance.0)
                .bind(before.map(|id| id.as_str().to_string()))
                .bind(i64::from(WINDOW)),
            )
            .await?;
        let (Some(newest), Some(oldest)) = (window.first(), window.last()) else { return Ok(RecentPage::default()) };
        let (newest, oldest) = (newest.text("id")?, oldest.text("id")?);
        let window_full = window.len() == WINDOW as usize;
        let rows = conn
            .fetch_all(
                sql("SELECT d.id, d.endpoint_id, d.status, d.attempts_made, d.next_attempt_at, d.created_at,
                            d.superseded, d.sequence, d.message_id, m.response_type
                     FROM messages m JOIN deliveries d ON d.message_id = m.id
                     WHERE m.instance_id = $1 AND m.id <= $2 AND m.id >= $3 AND d.endpoint_id = $4
                     ORDER BY m.id DESC, d.id DESC LIMIT $5")
                .bind(instance.0)
                .bind(newest)
                .bind(oldest.clone())
                .bind(endpoint.as_str())
                .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX)),
            )
            .await?;
        let message_of = |row: &crate::store::db::Row| row.text("message_id");
        let (rows, next) = if rows.len() <= limit {
            // Every delivery of the window is here; an older page exists only past a full window.
            (rows, window_full.then_some(oldest))
        } else {
            // More than a page: end it before the first message left out, whole messages only
            // (unless one message alone has more deliveries to the endpoint than a page).
            let first_out = message_of(&rows[limit])?;
            let mut keep = limit;
            while keep > 0 && message_of(&rows[keep - 1])? == first_out {
                keep -= 1;
            }
            let keep = if keep == 0 { limit } else { keep };
            let last_in = message_of(&rows[keep - 1])?;
            let mut rows = rows;
            rows.truncate(keep);
            (rows, Some(last_in))
        };
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut delivery = delivery_from(row)?;
            let last = conn
                .fetch_optional(
                    sql("SELECT id, attempt_number, started_at, latency_ms, status_code, error_class, error_detail,
                                response_excerpt, response_bytes, succeeded
                         FROM attempts WHERE delivery_id = $1
                         ORDER BY attempt_number DESC, started_at DESC LIMIT 1")
                    .bind(delivery.id.as_str()),
                )
                .await?;
            delivery.attempts = last.as_ref().map(attempt_from).transpose()?.into_iter().collect();
            let response_type = row.text("response_type")?;
            deliveries.push(RecentDelivery {
                message_id: MessageId::parse(&message_of(row)?).map_err(corrupt)?,
                response_type: MessageType::parse(&response_type).ok_or_else(|| corrupt(&response_type))?,
                delivery,
            });
        }
        let next = next.map(|id| MessageId::parse(&id).map_err(corrupt)).transpose()?;
        Ok(RecentPage { deliveries, next })
    }

    async fn ingest_to(&self, message: NewMessage, endpoint: &EndpointId) -> StoreResult<Option<IngestOutcome>> {
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        let theirs = conn
            .fetch_optional(
                sql("SELECT 1 AS one FROM endpoints WHERE instance_id = $1 AND id = $2")
                    .bind(message.instance_id.0)
                    .bind(endpoint.as_str()),
            )
            .await?
            .is_some();
        if !theirs {
            return Ok(None);
        }
        let login = message.login_id.clone();
        let mut subscriptions = Subscriptions::default();
        let numbered =
            subscriptions.number(&mut conn, message.instance_id, login.as_deref(), vec![endpoint.clone()]).await?;
        let (mut writes, outcome) = message_statements(message, numbered, None);
        writes.extend(subscriptions.sequences.written());
        conn.execute_all(writes).await?;
        tx.commit().await?;
        Ok(Some(outcome))
    }
}
