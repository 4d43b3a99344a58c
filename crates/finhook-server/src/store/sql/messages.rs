//! Messages and their deliveries: the ingest write, redelivery, and the reads that
//! assemble a message with its delivery history. Written once for both databases.

use std::collections::hash_map::{Entry, HashMap};

use chrono::{DateTime, Utc};
use finhook_core::events::MessageType;
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};

use super::payload_log::{load, PayloadRef, StoredBody, BODY_COLUMNS};
use super::SqlStore;
use crate::store::db::{placeholders, sql, Arg, Column, Conn, Row, Sql};
use crate::store::rows::*;
use crate::store::{
    DeliveryRecord, Endpoint, IngestOutcome, InstanceId, MessageDetail, MessageFilter, MessageSummary, NewMessage,
    ScheduledDelivery, StoreResult,
};

/// A message's columns, its body's ([`BODY_COLUMNS`]) included.
fn message_columns() -> String {
    format!("id, response_type, login_id, request_id, tag, created_at, {BODY_COLUMNS}")
}

pub(super) async fn list(
    store: &SqlStore,
    instance: InstanceId,
    filter: &MessageFilter,
) -> StoreResult<Vec<MessageSummary>> {
    // `string_agg(... ORDER BY ...)` is in both databases (SQLite since 3.44).
    let rows = store
        .pools
        .read_all(
            sql("SELECT id, response_type, login_id, request_id, tag, created_at,
                        (SELECT string_agg(status, ',' ORDER BY d.id) FROM deliveries d
                         WHERE d.message_id = m.id AND NOT d.superseded) AS statuses
                 FROM messages m
                 WHERE instance_id = $1
                   AND ($2 IS NULL OR login_id = $2)
                   AND ($3 IS NULL OR response_type = $3)
                   AND ($4 IS NULL OR id < $4)
                   AND ($5 IS NULL OR EXISTS (SELECT 1 FROM deliveries d
                                              WHERE d.message_id = m.id AND d.status = $5 AND NOT d.superseded))
                   AND ($7 IS NULL OR tag = $7)
                   AND ($8 IS NULL OR request_id = $8)
                   AND ($9 IS NULL OR created_at >= $9)
                   AND ($10 IS NULL OR created_at <= $10)
                 ORDER BY id DESC LIMIT $6")
            .bind(instance.0)
            .bind(&filter.login_id)
            .bind(filter.response_type.map(|t| t.as_str()))
            .bind(filter.before.as_ref().map(|id| id.as_str()))
            .bind(filter.status.map(|s| s.as_str()))
            .bind(i64::from(filter.limit))
            .bind(&filter.tag)
            .bind(&filter.request_id)
            .bind(filter.since.map(millis))
            .bind(filter.until.map(millis)),
        )
        .await?;
    rows.iter().map(listed_from).collect()
}

pub(super) async fn detail(
    store: &SqlStore,
    instance: InstanceId,
    id: &MessageId,
) -> StoreResult<Option<MessageDetail>> {
    let mut reader = store.pools.reader().await?;
    let mut conn = reader.conn();
    let row = conn
        .fetch_optional(
            sql(format!("SELECT {} FROM messages WHERE instance_id = $1 AND id = $2", message_columns()))
                .bind(instance.0)
                .bind(id.as_str()),
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let detail = detail_of(&mut conn, &row).await?;
    drop(reader);
    let loaded = load(store.payload_dir(), vec![StoredBody::of(&row)?]).await?.pop();
    let payload = loaded.map(|payload| payload.map(|checked| Vec::from(checked.bytes))).transpose()?;
    Ok(Some(MessageDetail { payload: payload.unwrap_or_default(), ..detail }))
}

pub(super) async fn of_login(
    store: &SqlStore,
    instance: InstanceId,
    login_id: &str,
) -> StoreResult<Vec<MessageDetail>> {
    let mut reader = store.pools.reader().await?;
    let mut conn = reader.conn();
    let rows = conn
        .fetch_all(
            sql(format!(
                "SELECT {} FROM messages WHERE instance_id = $1 AND login_id = $2 ORDER BY id",
                message_columns()
            ))
            .bind(instance.0)
            .bind(login_id),
        )
        .await?;
    let mut details = Vec::with_capacity(rows.len());
    for row in &rows {
        details.push(detail_of(&mut conn, row).await?);
    }
    drop(reader);
    let bodies = rows.iter().map(StoredBody::of).collect::<StoreResult<Vec<_>>>()?;
    let payloads = load(store.payload_dir(), bodies).await?;
    details
        .into_iter()
        .zip(payloads)
        .map(|(detail, payload)| Ok(MessageDetail { payload: Vec::from(payload?.bytes), ..detail }))
        .collect()
}

/// A message without its body (`payload` empty): the caller loads it ([`load`]).
async fn detail_of(conn: &mut Conn<'_>, row: &Row) -> StoreResult<MessageDetail> {
    let summary = summary_from(row)?;
    let deliveries = deliveries_of(conn, &summary.id).await?;
    Ok(MessageDetail { payload: Vec::new(), summary, deliveries })
}

async fn deliveries_of(conn: &mut Conn<'_>, message: &MessageId) -> StoreResult<Vec<DeliveryRecord>> {
    let rows = conn
        .fetch_all(
            sql("SELECT id, endpoint_id, status, attempts_made, next_attempt_at, created_at, superseded, sequence
                 FROM deliveries WHERE message_id = $1 ORDER BY id")
            .bind(message.as_str()),
        )
        .await?;
    let mut deliveries = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut delivery = delivery_from(row)?;
        delivery.attempts = conn
            .fetch_all(
                sql("SELECT id, attempt_number, started_at, latency_ms, status_code, error_class, error_detail,
                            response_excerpt, response_bytes, succeeded
                     FROM attempts WHERE delivery_id = $1 ORDER BY attempt_number, started_at")
                .bind(delivery.id.as_str()),
            )
            .await?
            .iter()
            .map(attempt_from)
            .collect::<StoreResult<Vec<_>>>()?;
        deliveries.push(delivery);
    }
    Ok(deliveries)
}

pub(super) async fn redeliver(
    store: &SqlStore,
    instance: InstanceId,
    id: &MessageId,
    endpoint: Option<&EndpointId>,
    now: DateTime<Utc>,
) -> StoreResult<Option<Vec<DeliveryId>>> {
    let mut tx = store.pools.begin().await?;
    let mut conn = tx.conn();
    let found = conn
        .fetch_optional(
            sql("SELECT response_type, login_id FROM messages WHERE instance_id = $1 AND id = $2")
                .bind(instance.0)
                .bind(id.as_str()),
        )
        .await?;
    let Some(row) = found else { return Ok(None) };
    let response_type = row.text("response_type")?;
    let response_type = MessageType::parse(&response_type).ok_or_else(|| corrupt(&response_type))?;
    let login = row.opt_text("login_id")?;
    let mut subscriptions = Subscriptions::default();
    let targets = match endpoint {
        Some(endpoint) => {
            let exists = conn
                .fetch_optional(
                    sql("SELECT 1 AS one FROM endpoints WHERE instance_id = $1 AND id = $2")
                        .bind(instance.0)
                        .bind(endpoint.as_str()),
                )
                .await?
                .is_some();
            if !exists {
                return Ok(None);
            }
            vec![endpoint.clone()]
        }
        None => subscriptions.of(&mut conn, instance, response_type).await?,
    };
    // A new round keeps the message's `webhook-sequence` at each endpoint it went to (it is
    // the same callback again); an endpoint it never went to numbers it as its next.
    let earlier: HashMap<String, Option<i64>> = conn
        .fetch_all(
            sql("SELECT endpoint_id, max(sequence) AS sequence FROM deliveries WHERE message_id = $1 GROUP BY endpoint_id")
                .bind(id.as_str()),
        )
        .await?
        .iter()
        .map(|row| Ok((row.text("endpoint_id")?, row.opt_int("sequence")?)))
        .collect::<StoreResult<_>>()?;
    let (known, new): (Vec<EndpointId>, Vec<EndpointId>) =
        targets.iter().cloned().partition(|t| earlier.get(t.as_str()).is_some_and(Option::is_some));
    let mut numbered: Vec<(EndpointId, Option<u64>)> = known
        .into_iter()
        .map(|t| {
            let sequence = earlier.get(t.as_str()).copied().flatten().and_then(|s| u64::try_from(s).ok());
            (t, sequence)
        })
        .collect();
    numbered.extend(subscriptions.number(&mut conn, instance, login.as_deref(), new).await?);
    if !targets.is_empty() {
        conn.execute(supersede(id, &targets, now)).await?;
    }
    let ids = schedule_deliveries(&mut conn, id, login.as_deref(), &numbered, now).await?;
    let written = subscriptions.sequences.written();
    if !written.is_empty() {
        conn.execute_all(written).await?;
    }
    tx.commit().await?;
    Ok(Some(ids))
}

/// Marks the deliveries of `message` to `endpoints` superseded by the new round about to be
/// scheduled: a message's state at an endpoint is its latest delivery's. One still pending
/// is cancelled (the new round sends the message now; no second copy later); an attempt
/// of it in flight is recorded and changes nothing (`record_set` leaves a cancelled
/// delivery cancelled).
fn supersede(message: &MessageId, endpoints: &[EndpointId], now: DateTime<Utc>) -> Sql {
    sql(format!(
        "UPDATE deliveries
         SET superseded = TRUE, updated_at = $2,
             status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
             next_attempt_at = CASE WHEN status = 'pending' THEN NULL ELSE next_attempt_at END
         WHERE message_id = $1 AND NOT superseded AND endpoint_id IN ({})",
        placeholders(3, endpoints.len())
    ))
    .bind(message.as_str())
    .bind(millis(now))
    .bind_each(endpoints.iter().map(EndpointId::as_str))
}

/// Inserts pending deliveries of `message` to each endpoint, due at `now`.
async fn schedule_deliveries(
    conn: &mut Conn<'_>,
    message: &MessageId,
    login: Option<&str>,
    endpoints: &[(EndpointId, Option<u64>)],
    now: DateTime<Utc>,
) -> StoreResult<Vec<DeliveryId>> {
    let (insert, ids) = deliveries_insert(message, login, endpoints, now);
    if let Some(insert) = insert {
        conn.execute(insert).await?;
    }
    Ok(ids)
}

/// One statement inserting pending deliveries of `message` (of LoginId `login`) to each
/// endpoint, due at `now` (none if there is no endpoint), and the new deliveries' ids. A
/// numbered delivery carries its callback's LoginId, for an ordered endpoint's scan.
fn deliveries_insert(
    message: &MessageId,
    login: Option<&str>,
    endpoints: &[(EndpointId, Option<u64>)],
    now: DateTime<Utc>,
) -> (Option<Sql>, Vec<DeliveryId>) {
    if endpoints.is_empty() {
        return (None, Vec::new());
    }
    let ids: Vec<DeliveryId> = endpoints.iter().map(|_| DeliveryId::generate()).collect();
    let mut text = String::from(
        "INSERT INTO deliveries (id, message_id, endpoint_id, status, next_attempt_at, created_at, updated_at,
                                 sequence, login_id) VALUES ",
    );
    for n in 0..endpoints.len() {
        let (id_arg, endpoint_arg, sequence_arg, login_arg) = (3 + 4 * n, 4 + 4 * n, 5 + 4 * n, 6 + 4 * n);
        if n > 0 {
            text.push_str(", ");
        }
        text.push_str(&format!(
            "(${id_arg}, $1, ${endpoint_arg}, 'pending', $2, $2, $2, ${sequence_arg}, ${login_arg})"
        ));
    }
    let mut statement = sql(text).bind(message.as_str()).bind(millis(now));
    for (id, (endpoint, sequence)) in ids.iter().zip(endpoints) {
        statement = statement
            .bind(id.as_str())
            .bind(endpoint.as_str())
            .bind(sequence.map(sequence_arg))
            .bind(sequence.and(login));
    }
    (Some(statement), ids)
}

/// A sequence number as the databases store it.
pub(super) fn sequence_arg(sequence: u64) -> i64 {
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

/// The enabled endpoints of each instance (with the callbacks each takes), read once per
/// group-commit batch, by its first ingest to the instance.
///
/// That is right on a shared store too, where another node may add an endpoint while a
/// batch is open: every write of a batch was queued before the batch began, so the read
/// comes after each of its callbacks arrived. An endpoint whose creation was answered
/// before a callback arrived was committed before the read, and READ COMMITTED sees it;
/// one created while the batch is open raced the callback, and either order is a true
/// account of a race.
#[derive(Default)]
pub(super) struct Subscriptions {
    memo: HashMap<InstanceId, Vec<Endpoint>>,
    /// Those of the endpoints read that take a LoginId's callbacks one at a time.
    ordered: std::collections::HashSet<EndpointId>,
    /// The batch's `webhook-sequence` numbers, counted on from what is committed.
    pub(super) sequences: super::sequence::Sequences,
}

impl Subscriptions {
    /// Reads the endpoints of those of `instances` not read yet, in one query (PostgreSQL:
    /// the set-based ingest reads a whole batch's instances at once).
    pub(super) async fn read(&mut self, conn: &mut Conn<'_>, instances: &[InstanceId]) -> StoreResult<()> {
        let mut unread: Vec<i64> =
            instances.iter().filter(|instance| !self.memo.contains_key(instance)).map(|instance| instance.0).collect();
        unread.sort_unstable();
        unread.dedup();
        if unread.is_empty() {
            return Ok(());
        }
        for &instance in &unread {
            self.memo.insert(InstanceId(instance), Vec::new());
        }
        let rows = conn
            .fetch_all(
                sql(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = ANY($1) AND enabled"))
                    .bind(Arg::Array(Column::Ints(unread.into_iter().map(Some).collect()))),
            )
            .await?;
        let read: Vec<Endpoint> = rows.iter().map(endpoint_from).collect::<StoreResult<_>>()?;
        self.ordered.extend(ordered_ids(&read));
        for endpoint in read {
            self.memo.entry(endpoint.instance_id).or_default().push(endpoint);
        }
        Ok(())
    }

    /// `endpoints`, each with the `webhook-sequence` of a callback of `login` to it (none
    /// without a LoginId), counted on for the next.
    pub(super) async fn number(
        &mut self,
        conn: &mut Conn<'_>,
        instance: InstanceId,
        login: Option<&str>,
        endpoints: Vec<EndpointId>,
    ) -> StoreResult<Vec<(EndpointId, Option<u64>)>> {
        let Some(login) = login else { return Ok(endpoints.into_iter().map(|e| (e, None)).collect()) };
        if !endpoints.is_empty() {
            self.sequences.read(conn, &[(instance, login.to_string())]).await?;
        }
        Ok(endpoints
            .into_iter()
            .map(|endpoint| {
                let sequence = self.sequences.take(instance, login, &endpoint);
                (endpoint, Some(sequence))
            })
            .collect())
    }

    /// The enabled endpoints of `instance` that take `response_type`.
    pub(super) async fn of(
        &mut self,
        conn: &mut Conn<'_>,
        instance: InstanceId,
        response_type: MessageType,
    ) -> StoreResult<Vec<EndpointId>> {
        let endpoints = match self.memo.entry(instance) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(unknown) => {
                let rows = conn
                    .fetch_all(
                        sql(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = $1 AND enabled"))
                            .bind(instance.0),
                    )
                    .await?;
                let read: Vec<Endpoint> = rows.iter().map(endpoint_from).collect::<StoreResult<_>>()?;
                self.ordered.extend(ordered_ids(&read));
                unknown.insert(read)
            }
        };
        Ok(endpoints.iter().filter(|endpoint| endpoint.subscribes_to(response_type)).map(|e| e.id.clone()).collect())
    }

    /// Whether `endpoint` (read by [`Subscriptions::of`]) takes a LoginId's callbacks one
    /// at a time: its deliveries then go through its lane's scan, never straight from
    /// their ingest.
    pub(super) fn ordered(&self, endpoint: &EndpointId) -> bool {
        self.ordered.contains(endpoint)
    }
}

/// The ids of those of `endpoints` that take a LoginId's callbacks one at a time.
fn ordered_ids(endpoints: &[Endpoint]) -> impl Iterator<Item = EndpointId> + '_ {
    endpoints.iter().filter(|e| e.ordering == crate::store::DeliveryOrder::LoginId).map(|e| e.id.clone())
}

/// Adds `bytes` to what `instance` stores, in the transaction that stores them.
pub(super) fn stored_bytes_added(instance: InstanceId, bytes: usize) -> Sql {
    sql("UPDATE instances SET stored_bytes = stored_bytes + $2 WHERE id = $1")
        .bind(instance.0)
        .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
}

/// Stores one message and its deliveries on `conn`: inside the group commit's transaction,
/// or a savepoint of it.
pub(super) async fn ingest_on(
    conn: &mut Conn<'_>,
    subscriptions: &mut Subscriptions,
    message: NewMessage,
) -> StoreResult<IngestOutcome> {
    if let Some(key) = &message.idempotency_key {
        let existing = conn
            .fetch_optional(
                sql("SELECT id, body_sha256 FROM messages WHERE instance_id = $1 AND idempotency_key = $2")
                    .bind(message.instance_id.0)
                    .bind(key),
            )
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
    let (writes, outcome) = ingest_statements(conn, subscriptions, message).await?;
    // The message and its deliveries in one round trip on SQLite.
    conn.execute_all(writes).await?;
    Ok(outcome)
}

/// The statements that store a message and its deliveries (read: the endpoints it fans out
/// to), and the outcome they make once run. For an ingest without an idempotency key, which
/// cannot be a replay; `ingest_on` checks the key first.
pub(super) async fn ingest_statements(
    conn: &mut Conn<'_>,
    subscriptions: &mut Subscriptions,
    message: NewMessage,
) -> StoreResult<(Vec<Sql>, IngestOutcome)> {
    let endpoints = subscriptions.of(conn, message.instance_id, message.response_type).await?;
    let numbered = subscriptions.number(conn, message.instance_id, message.login_id.as_deref(), endpoints).await?;
    // The SQLite writer's body goes to the payload log, synced before the `COMMIT`.
    let logged = conn.payload_log().map(|log| log.append(&message.payload));
    Ok(message_statements(message, numbered, logged))
}

/// The statements that store a message and schedule a delivery of it to each of
/// `endpoints` (with its `webhook-sequence`), due at once, and the outcome they make once run.
/// With `logged`, the body is in the payload log there, and the row names it (its own
/// `payload` is then empty).
pub(super) fn message_statements(
    message: NewMessage,
    endpoints: Vec<(EndpointId, Option<u64>)>,
    logged: Option<PayloadRef>,
) -> (Vec<Sql>, IngestOutcome) {
    let message_id = MessageId::generate();
    let (instance, response_type, now) = (message.instance_id, message.response_type, message.now);
    let login = message.login_id.clone();
    let payload_bytes = message.payload.len();
    let payload = if logged.is_some() { bytes::Bytes::new() } else { message.payload };
    let position =
        |value: fn(&PayloadRef) -> u64| logged.as_ref().map(|at| i64::try_from(value(at)).unwrap_or(i64::MAX));
    let mut writes =
        vec![sql("INSERT INTO messages (id, instance_id, response_type, login_id, request_id, tag, idempotency_key,
                                   body_sha256, payload, created_at, payload_segment, payload_offset, payload_length)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
        .bind(message_id.as_str())
        .bind(instance.0)
        .bind(response_type.as_str())
        .bind(message.login_id)
        .bind(message.request_id)
        .bind(message.tag)
        .bind(message.idempotency_key)
        .bind(message.body_sha256)
        .bind(payload)
        .bind(millis(now))
        .bind(position(|at| at.segment))
        .bind(position(|at| at.offset))
        .bind(position(|at| at.length))];
    writes.push(stored_bytes_added(instance, payload_bytes));
    let (deliveries_insert, ids) = deliveries_insert(&message_id, login.as_deref(), &endpoints, now);
    writes.extend(deliveries_insert);
    let deliveries = ids
        .into_iter()
        .zip(endpoints)
        .map(|(id, (endpoint_id, sequence))| ScheduledDelivery { id, endpoint_id, leased_until: None, sequence })
        .collect();
    (writes, IngestOutcome::Created { message_id, deliveries })
}
