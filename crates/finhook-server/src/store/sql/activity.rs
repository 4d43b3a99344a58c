//! One endpoint's activity, written once for both databases (see [`crate::store::activity`]).

use async_trait::async_trait;
use finhook_core::events::MessageType;
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};

use super::messages::message_statements;
use super::SqlStore;
use crate::store::activity::{ActivityStore, RecentDelivery, MAX_RECENT};
use crate::store::db::sql;
use crate::store::rows::{attempt_from, corrupt, delivery_from, Cols};
use crate::store::{IngestOutcome, InstanceId, NewMessage, StoreResult};

#[async_trait]
impl ActivityStore for SqlStore {
    async fn recent_deliveries(
        &self,
        instance: InstanceId,
        endpoint: &EndpointId,
        before: Option<&DeliveryId>,
        limit: u32,
    ) -> StoreResult<Vec<RecentDelivery>> {
        let mut reader = self.pools.reader().await?;
        let mut conn = reader.conn();
        // Down `deliveries_by_endpoint_id`; the join only checks the instance.
        let rows = conn
            .fetch_all(
                sql("SELECT d.id, d.endpoint_id, d.status, d.attempts_made, d.next_attempt_at, d.created_at,
                            d.superseded, d.message_id, m.response_type
                     FROM deliveries d JOIN messages m ON m.id = d.message_id
                     WHERE d.endpoint_id = $1 AND m.instance_id = $2 AND ($3 IS NULL OR d.id < $3)
                     ORDER BY d.id DESC LIMIT $4")
                .bind(endpoint.as_str())
                .bind(instance.0)
                .bind(before.map(|id| id.as_str().to_string()))
                .bind(i64::from(limit.clamp(1, MAX_RECENT + 1))),
            )
            .await?;
        let mut recent = Vec::with_capacity(rows.len());
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
            recent.push(RecentDelivery {
                message_id: MessageId::parse(&row.text("message_id")?).map_err(corrupt)?,
                response_type: MessageType::parse(&response_type).ok_or_else(|| corrupt(&response_type))?,
                delivery,
            });
        }
        Ok(recent)
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
        let (writes, outcome) = message_statements(message, vec![endpoint.clone()]);
        conn.execute_all(writes).await?;
        tx.commit().await?;
        Ok(Some(outcome))
    }
}
