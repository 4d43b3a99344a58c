//! The operational events' tables, written once for both databases (see
//! [`crate::store::events`]): endpoints' runs of failed attempts, kept by the group commit
//! ([`Tracking`]), and the outbox, published as messages.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::events::{EventBody, EventType, MessageType};
use finhook_core::ids::{EndpointId, MessageId};
use finhook_core::secret::hex;
use sha2::{Digest, Sha256};

use super::messages::{ingest_on, Subscriptions};
use super::SqlStore;
use crate::store::db::{placeholders, sql, Backend, Conn, Sql};
use crate::store::events::{EventStore, Failing, NewEvent, Published, PUBLISH_BATCH};
use crate::store::rows::{corrupt, millis, time_of, Cols};
use crate::store::{AttemptResult, DeliveryStatus, ErrorClass, IngestOutcome, InstanceId, NewMessage, StoreResult};

const FAILING_COLUMNS: &str =
    "endpoint_id, instance_id, failing_since, failures_in_row, last_failed_at, last_status_code, last_error_class";

#[async_trait]
impl EventStore for SqlStore {
    async fn queue_event(&self, event: NewEvent) -> StoreResult<()> {
        self.pools.write(queued(&event)).await?;
        Ok(())
    }

    async fn report_failing(&self, after: u32) -> StoreResult<usize> {
        let over = i64::from(after.max(1));
        // Nearly always none: a read says so without taking the writer.
        let unreported =
            sql("SELECT endpoint_id FROM endpoint_failures WHERE failures_in_row >= $1 AND NOT reported LIMIT 1");
        if self.pools.read_optional(unreported.bind(over)).await?.is_none() {
            return Ok(0);
        }
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        let rows = conn
            .fetch_all(
                sql(format!(
                    "UPDATE endpoint_failures SET reported = TRUE
                     WHERE failures_in_row >= $1 AND NOT reported
                     RETURNING {FAILING_COLUMNS}"
                ))
                .bind(over),
            )
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let (endpoint, instance, failing) = failing_from(row)?;
            events.push(NewEvent::of_run(
                EventType::EndpointFailing,
                instance,
                &endpoint,
                &failing,
                failing.last_failed_at,
            ));
        }
        conn.execute_all(events.iter().map(queued).collect()).await?;
        tx.commit().await?;
        Ok(events.len())
    }

    async fn disable_failing(&self, failing_since: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<Vec<EndpointId>> {
        let due = format!(
            "SELECT {} FROM endpoint_failures f JOIN endpoints e ON e.id = f.endpoint_id
             WHERE e.enabled AND f.failing_since <= $1 ORDER BY f.endpoint_id",
            FAILING_COLUMNS.split(", ").map(|column| format!("f.{column}")).collect::<Vec<_>>().join(", ")
        );
        if self.pools.read_all(sql(due.clone()).bind(millis(failing_since))).await?.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        let rows = conn.fetch_all(sql(due).bind(millis(failing_since))).await?;
        let mut disabled = Vec::new();
        for row in &rows {
            let (endpoint, instance, failing) = failing_from(row)?;
            // Only if no one changed it meanwhile (another node, its owner).
            let changed = conn
                .execute(
                    sql("UPDATE endpoints SET enabled = FALSE, auto_disabled_at = $1, updated_at = $1
                         WHERE id = $2 AND enabled")
                    .bind(millis(now))
                    .bind(endpoint.as_str()),
                )
                .await?;
            conn.execute(sql("DELETE FROM endpoint_failures WHERE endpoint_id = $1").bind(endpoint.as_str())).await?;
            if changed == 1 {
                conn.execute(queued(&NewEvent::of_run(
                    EventType::EndpointDisabled,
                    instance,
                    &endpoint,
                    &failing,
                    now,
                )))
                .await?;
                disabled.push(endpoint);
            }
        }
        tx.commit().await?;
        self.endpoints_changed();
        Ok(disabled)
    }

    async fn publish_events(
        &self,
        operators: Option<InstanceId>,
        now: DateTime<Utc>,
    ) -> StoreResult<(usize, Vec<Published>)> {
        // Nearly always empty: a read says so without taking the writer.
        if self.pools.read_optional(sql("SELECT id FROM event_outbox LIMIT 1")).await?.is_none() {
            return Ok((0, Vec::new()));
        }
        let mut tx = self.pools.begin().await?;
        let lock = match self.backend() {
            // Two nodes publishing at once take different events.
            Backend::Postgres => " FOR UPDATE OF o SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let mut conn = tx.conn();
        let rows = conn
            .fetch_all(
                sql(format!(
                    "SELECT o.id, o.instance_id, i.name AS instance, o.event_type, o.key, o.endpoint_id, o.message_id,
                            o.at, o.data, m.response_type AS about
                     FROM event_outbox o
                     LEFT JOIN instances i ON i.id = o.instance_id
                     LEFT JOIN messages m ON m.id = o.message_id
                     ORDER BY o.id LIMIT $1{lock}"
                ))
                .bind(PUBLISH_BATCH as i64),
            )
            .await?;
        let mut subscriptions = Subscriptions::default();
        let mut published = Vec::new();
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            ids.push(row.int("id")?);
            // An instance deleted since: nobody to tell.
            let Some(instance_name) = row.opt_text("instance")? else { continue };
            let event_type = row.text("event_type")?;
            let event_type =
                EventType::parse(&event_type).ok_or_else(|| corrupt(format!("event type {event_type}")))?;
            // No event about an event's delivery: one endpoint that takes its own events and
            // fails would otherwise make them without end.
            let about_event =
                row.opt_text("about")?.and_then(|about| MessageType::parse(&about)).is_some_and(MessageType::is_event);
            if about_event {
                continue;
            }
            let body = EventBody {
                event_type: event_type.as_str().to_string(),
                instance: instance_name,
                endpoint_id: row.opt_text("endpoint_id")?,
                message_id: row.opt_text("message_id")?,
                at: time_of(row.int("at")?)?,
                data: serde_json::from_str(&row.text("data")?).map_err(corrupt)?,
            };
            let payload = bytes::Bytes::from(serde_json::to_vec(&body).map_err(corrupt)?);
            let body_sha256 = hex(&Sha256::digest(&payload));
            let owner = InstanceId(row.int("instance_id")?);
            let key = row.text("key")?;
            let targets = std::iter::once(owner).chain(operators.filter(|operators| *operators != owner));
            for target in targets {
                let message_type = MessageType::Event(event_type);
                if subscriptions.of(&mut conn, target, message_type).await?.is_empty() {
                    continue;
                }
                let message = NewMessage {
                    instance_id: target,
                    response_type: message_type,
                    login_id: None,
                    request_id: None,
                    tag: None,
                    idempotency_key: Some(key.clone()),
                    body_sha256: body_sha256.clone(),
                    payload: payload.clone(),
                    now,
                };
                if let IngestOutcome::Created { message_id, deliveries } =
                    ingest_on(&mut conn, &mut subscriptions, message).await?
                {
                    let (payload, body_sha256) = (payload.clone(), body_sha256.clone());
                    published.push(Published { event_type, message_id, payload, body_sha256, deliveries });
                }
            }
        }
        if !ids.is_empty() {
            conn.execute(
                sql(format!("DELETE FROM event_outbox WHERE id IN ({})", placeholders(1, ids.len()))).bind_each(ids),
            )
            .await?;
        }
        tx.commit().await?;
        Ok((rows.len(), published))
    }

    async fn events_queued(&self) -> StoreResult<u64> {
        let row = self.pools.read_optional(sql("SELECT COUNT(*) AS n FROM event_outbox")).await?;
        Ok(row.map(|row| row.int("n")).transpose()?.unwrap_or(0).max(0).unsigned_abs())
    }

    async fn failing_endpoints(&self, instance: Option<InstanceId>) -> StoreResult<Vec<(EndpointId, Failing)>> {
        let rows = self
            .pools
            .read_all(
                sql(format!(
                    "SELECT {FAILING_COLUMNS} FROM endpoint_failures WHERE $1 IS NULL OR instance_id = $1 ORDER BY endpoint_id"
                ))
                .bind(instance.map(|instance| instance.0)),
            )
            .await?;
        rows.iter().map(|row| failing_from(row).map(|(endpoint, _, failing)| (endpoint, failing))).collect()
    }
}

/// The statement that queues `event` in the outbox.
fn queued(event: &NewEvent) -> Sql {
    sql("INSERT INTO event_outbox (instance_id, event_type, key, endpoint_id, message_id, at, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7)")
    .bind(event.instance_id.0)
    .bind(event.event_type.as_str())
    .bind(&event.key)
    .bind(event.endpoint_id.as_ref().map(EndpointId::as_str))
    .bind(event.message_id.as_ref().map(MessageId::as_str))
    .bind(millis(event.at))
    .bind(event.data.to_string())
}

fn failing_from(row: &impl Cols) -> StoreResult<(EndpointId, InstanceId, Failing)> {
    let endpoint = EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?;
    let class = row.opt_text("last_error_class")?;
    let failing = Failing {
        since: time_of(row.int("failing_since")?)?,
        failed_attempts_in_row: row.int("failures_in_row")?.max(0).unsigned_abs(),
        last_failed_at: time_of(row.int("last_failed_at")?)?,
        last_status_code: row.opt_int("last_status_code")?.and_then(|code| u16::try_from(code).ok()),
        last_error_class: class.as_deref().map(|c| ErrorClass::parse(c).ok_or_else(|| corrupt(c))).transpose()?,
    };
    Ok((endpoint, InstanceId(row.int("instance_id")?), failing))
}

/// What one group-commit batch's attempt records change in the endpoints' runs of failed
/// attempts and in the outbox: read from the records before they are written, applied in
/// the same transaction after them (see [`crate::store::events`]).
#[derive(Debug, Default)]
pub(super) struct Tracking {
    /// Per endpoint, in id order, so that two PostgreSQL nodes' batches lock the rows of
    /// the endpoints they share in one order. (A success's delete comes before the
    /// failures' upserts, so two batches can still meet crosswise; PostgreSQL then aborts
    /// one, and the group commit applies that batch again write by write.)
    endpoints: BTreeMap<EndpointId, Run>,
    /// Deliveries that failed their last attempt.
    exhausted: Vec<NewEvent>,
}

/// One endpoint's attempts in a batch: whether one succeeded, and the failures after the
/// last success.
#[derive(Debug)]
struct Run {
    instance: InstanceId,
    /// The time of the batch's last success.
    succeeded_at: Option<DateTime<Utc>>,
    failures: i64,
    first_failed_at: Option<DateTime<Utc>>,
    last_failed_at: Option<DateTime<Utc>>,
    last_status_code: Option<u16>,
    last_error_class: Option<ErrorClass>,
}

impl Tracking {
    pub(super) fn of(records: &[&AttemptResult]) -> Self {
        let mut tracking = Self::default();
        for record in records {
            let attempt = &record.attempt;
            let run = tracking.endpoints.entry(record.endpoint_id.clone()).or_insert_with(|| Run {
                instance: record.ledger.instance_id,
                succeeded_at: None,
                failures: 0,
                first_failed_at: None,
                last_failed_at: None,
                last_status_code: None,
                last_error_class: None,
            });
            if attempt.succeeded {
                run.succeeded_at = Some(attempt.started_at);
                run.failures = 0;
                run.first_failed_at = None;
            } else {
                run.failures += 1;
                run.first_failed_at.get_or_insert(attempt.started_at);
                run.last_failed_at = Some(attempt.started_at);
                run.last_status_code = attempt.status_code;
                run.last_error_class = attempt.error_class;
            }
            if record.new_status == DeliveryStatus::Failed {
                tracking.exhausted.push(NewEvent::exhausted(record));
            }
        }
        tracking
    }

    /// Applies the batch's changes on `conn`, inside its transaction.
    pub(super) async fn apply(self, conn: &mut Conn<'_>) -> StoreResult<()> {
        let succeeded: Vec<&EndpointId> =
            self.endpoints.iter().filter(|(_, run)| run.succeeded_at.is_some()).map(|(id, _)| id).collect();
        let mut writes: Vec<Sql> = self.exhausted.iter().map(queued).collect();
        if !succeeded.is_empty() {
            // A success ends the run; one that had been reported failing has recovered.
            let ended = conn
                .fetch_all(
                    sql(format!(
                        "DELETE FROM endpoint_failures WHERE endpoint_id IN ({}) RETURNING {FAILING_COLUMNS}, reported",
                        placeholders(1, succeeded.len())
                    ))
                    .bind_each(succeeded.iter().map(|id| id.as_str())),
                )
                .await?;
            for row in ended.iter().filter(|row| row.flag("reported").unwrap_or(false)) {
                let (endpoint, instance, failing) = failing_from(row)?;
                let at =
                    self.endpoints.get(&endpoint).and_then(|run| run.succeeded_at).unwrap_or(failing.last_failed_at);
                writes.push(queued(&NewEvent::of_run(EventType::EndpointRecovered, instance, &endpoint, &failing, at)));
            }
        }
        for (endpoint, run) in &self.endpoints {
            let (Some(first), Some(last)) = (run.first_failed_at, run.last_failed_at) else { continue };
            writes.push(
                sql("INSERT INTO endpoint_failures (endpoint_id, instance_id, failing_since, failures_in_row,
                                                    last_failed_at, last_status_code, last_error_class, reported)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE)
                     ON CONFLICT (endpoint_id) DO UPDATE SET
                         failures_in_row = endpoint_failures.failures_in_row + excluded.failures_in_row,
                         last_failed_at = excluded.last_failed_at,
                         last_status_code = excluded.last_status_code,
                         last_error_class = excluded.last_error_class")
                .bind(endpoint.as_str())
                .bind(run.instance.0)
                .bind(millis(first))
                .bind(run.failures)
                .bind(millis(last))
                .bind(run.last_status_code.map(i64::from))
                .bind(run.last_error_class.map(ErrorClass::as_str)),
            );
        }
        if !writes.is_empty() {
            conn.execute_all(writes).await?;
        }
        Ok(())
    }
}
