//! Messages and their deliveries in the embedded store: the ingest write and the reads
//! that assemble a message with its delivery history.

use chrono::{DateTime, Utc};
use finhook_core::flinks::ResponseType;
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::store::rows::*;
use crate::store::{DeliveryRecord, IngestOutcome, InstanceId, MessageDetail, NewMessage, StoreResult};

impl SqliteStore {
    pub(super) async fn deliveries_of(&self, message: &MessageId) -> StoreResult<Vec<DeliveryRecord>> {
        let rows = sqlx::query(
            "SELECT id, endpoint_id, status, attempts_made, next_attempt_at, created_at
             FROM deliveries WHERE message_id = ? ORDER BY id",
        )
        .bind(message.as_str())
        .fetch_all(&self.reader)
        .await?;
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut delivery = delivery_from(row)?;
            delivery.attempts = sqlx::query(
                "SELECT id, attempt_number, started_at, latency_ms, status_code, error_class, error_detail,
                        response_excerpt, response_bytes, succeeded
                 FROM attempts WHERE delivery_id = ? ORDER BY attempt_number, started_at",
            )
            .bind(delivery.id.as_str())
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(attempt_from)
            .collect::<StoreResult<Vec<_>>>()?;
            deliveries.push(delivery);
        }
        Ok(deliveries)
    }

    pub(super) async fn detail_of(&self, row: &SqliteRow) -> StoreResult<MessageDetail> {
        let summary = summary_from(row)?;
        let deliveries = self.deliveries_of(&summary.id).await?;
        Ok(MessageDetail { payload: row.bytes("payload")?, summary, deliveries })
    }
}

/// Inserts pending deliveries of `message` to each endpoint, due at `now`.
pub(super) async fn schedule_deliveries(
    tx: &mut sqlx::SqliteConnection,
    message: &MessageId,
    endpoints: &[EndpointId],
    now: DateTime<Utc>,
) -> StoreResult<Vec<DeliveryId>> {
    let mut ids = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let id = DeliveryId::generate();
        sqlx::query(
            "INSERT INTO deliveries (id, message_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
             VALUES (?, ?, ?, 'pending', ?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(message.as_str())
        .bind(endpoint.as_str())
        .bind(millis(now))
        .bind(millis(now))
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// The enabled endpoints of an instance that take `response_type`.
pub(super) async fn subscribed_endpoints(
    tx: &mut sqlx::SqliteConnection,
    instance: InstanceId,
    response_type: ResponseType,
) -> StoreResult<Vec<EndpointId>> {
    let rows = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = ? AND enabled = 1"))
        .bind(instance.0)
        .fetch_all(&mut *tx)
        .await?;
    let mut ids = Vec::new();
    for row in &rows {
        let endpoint = endpoint_from(row)?;
        if endpoint.subscribes_to(response_type) {
            ids.push(endpoint.id);
        }
    }
    Ok(ids)
}

/// Stores one message and its deliveries on `tx` (a savepoint of a batch transaction).
pub(super) async fn ingest_on(tx: &mut sqlx::SqliteConnection, message: NewMessage) -> StoreResult<IngestOutcome> {
    if let Some(key) = &message.idempotency_key {
        let existing =
            sqlx::query("SELECT id, body_sha256 FROM messages WHERE instance_id = ? AND idempotency_key = ?")
                .bind(message.instance_id.0)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = existing {
            let message_id = MessageId::parse(&row.text("id")?).map_err(corrupt)?;
            let same_body = row.text("body_sha256")? == message.body_sha256;
            return Ok(if same_body {
                IngestOutcome::Replayed { message_id }
            } else {
                IngestOutcome::KeyReused { message_id }
            });
        }
    }
    let message_id = MessageId::generate();
    sqlx::query(
        "INSERT INTO messages (id, instance_id, response_type, login_id, request_id, tag, idempotency_key,
                               body_sha256, payload, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(message_id.as_str())
    .bind(message.instance_id.0)
    .bind(message.response_type.as_str())
    .bind(&message.login_id)
    .bind(&message.request_id)
    .bind(&message.tag)
    .bind(&message.idempotency_key)
    .bind(&message.body_sha256)
    .bind(&message.payload)
    .bind(millis(message.now))
    .execute(&mut *tx)
    .await?;
    let endpoints = subscribed_endpoints(tx, message.instance_id, message.response_type).await?;
    let deliveries = schedule_deliveries(tx, &message_id, &endpoints, message.now).await?;
    Ok(IngestOutcome::Created { message_id, deliveries: deliveries.len() })
}
