//! Set-based writes on PostgreSQL: the rows a group commit writes to one table go in one
//! statement, not one statement per row.
//!
//! A batch of 200 callbacks written row by row costs about 800 statements on the one
//! writer connection, each a network round trip to PostgreSQL's backend that the next must
//! wait for: the writer, not the disk or the CPU, then sets the rate. Here each table gets
//! one statement per batch, whatever its size: `UNNEST` of one array per column, as a
//! common table expression `v` that the statement reads (one text whatever the row count,
//! so it is prepared once).
//!
//! Not on SQLite: there a "round trip" is a hop to sqlx's connection thread in the same
//! process, and SQLite has no arrays, so a set would be a `VALUES` list as long as its
//! batch, prepared anew each time. Measured (docs/BENCHMARKS.md, "Set-based writes"),
//! that tied with row by row for one endpoint and lost a quarter of the deliveries per
//! second when each callback fans out to ten endpoints; the embedded store keeps writing
//! row by row.

use std::collections::HashSet;

use finhook_core::ids::{DeliveryId, MessageId};

use super::ledger::{seq_arg, NewHead, Sealed};
use super::messages::Subscriptions;
use crate::store::db::{sql, Arg, Column, Conn, Sql};
use crate::store::rows::millis;
use crate::store::{AttemptResult, ErrorClass, IngestOutcome, InstanceId, NewMessage, ScheduledDelivery, StoreResult};

/// The most rows one source of a statement carries: a bound on one statement's size
/// however many endpoints a batch fans out to.
const MAX_ROWS: usize = 1000;

/// Rows to write, column by column: each column's values in row order.
pub(super) struct Rows {
    names: Vec<&'static str>,
    columns: Vec<Column>,
}

impl Rows {
    fn new() -> Self {
        Self { names: Vec::new(), columns: Vec::new() }
    }

    fn column(mut self, name: &'static str, values: Column) -> Self {
        self.names.push(name);
        self.columns.push(values);
        self
    }

    fn len(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// The rows `start..end`, columns in the same order.
    fn slice(&self, start: usize, end: usize) -> Rows {
        let columns = self.columns.iter().map(|column| column.slice(start, end)).collect();
        Rows { names: self.names.clone(), columns }
    }
}

/// A set of rows under a name, and the writes that read it.
struct Part {
    /// The name the writes read the rows by (unique among a statement's parts).
    source: &'static str,
    rows: Rows,
    writes: Vec<String>,
}

/// What a batch writes as sets, to send as few statements as possible: each [`Part`]'s rows
/// a common table expression of their own (`UNNEST` of one array per column), each write a
/// data-modifying one, all in one statement when every part fits in [`MAX_ROWS`].
///
/// A statement is a round trip the writer waits for, and under load a round trip to
/// PostgreSQL's backend on this machine cost 0.5 to 0.7 ms of scheduling alone (measured,
/// docs/BENCHMARKS.md "One statement per batch"): thirteen per batch were most of what a
/// batch cost. The parts of one statement never touch the same rows (a record never
/// belongs to an ingest of the same batch: a delivery is handed to the worker only once
/// its ingest is committed), so the order PostgreSQL runs them in does not matter, and
/// foreign keys are checked at the statement's end, when every part has run.
#[derive(Default)]
pub(super) struct Writes {
    parts: Vec<Part>,
}

impl Writes {
    fn part(mut self, source: &'static str, rows: Rows, writes: &[&str]) -> Self {
        if rows.len() > 0 {
            self.parts.push(Part { source, rows, writes: writes.iter().map(|w| (*w).to_string()).collect() });
        }
        self
    }

    /// Both `self`'s writes and `other`'s (their sources must be named apart).
    pub(super) fn and(mut self, other: Writes) -> Self {
        debug_assert!(other.parts.iter().all(|p| self.parts.iter().all(|q| q.source != p.source)));
        self.parts.extend(other.parts);
        self
    }

    /// The statements to run: one for all the parts when each fits in [`MAX_ROWS`],
    /// otherwise one per part and chunk of rows.
    pub(super) fn statements(self) -> Vec<Sql> {
        let mut out = Vec::new();
        if self.parts.iter().all(|part| part.rows.len() <= MAX_ROWS) {
            if !self.parts.is_empty() {
                out.push(statement(self.parts));
            }
        } else {
            for part in &self.parts {
                let len = part.rows.len();
                for start in (0..len).step_by(MAX_ROWS) {
                    let rows = part.rows.slice(start, (start + MAX_ROWS).min(len));
                    out.push(statement(vec![Part { source: part.source, rows, writes: part.writes.clone() }]));
                }
            }
        }
        out
    }

    pub(super) async fn run(self, conn: &mut Conn<'_>) -> StoreResult<()> {
        conn.execute_all(self.statements()).await?;
        Ok(())
    }
}

/// `WITH a (names) AS (SELECT * FROM UNNEST($1::int8[], ...)), b (...) AS (...), w1 AS
/// (first write), ... last write`: one array argument per column, the last write the
/// statement itself.
fn statement(parts: Vec<Part>) -> Sql {
    let (mut sources, mut writes, mut args) = (Vec::new(), Vec::new(), Vec::new());
    for Part { source, rows, writes: reads } in parts {
        let mut casts = Vec::with_capacity(rows.columns.len());
        for column in rows.columns {
            casts.push(format!("${}::{}[]", args.len() + 1, column.pg_type()));
            args.push(Arg::Array(column));
        }
        sources.push(format!("{source} ({}) AS (SELECT * FROM UNNEST({}))", rows.names.join(", "), casts.join(", ")));
        writes.extend(reads);
    }
    let last = writes.pop().unwrap_or_else(|| "SELECT 1".to_string());
    let ctes: Vec<String> =
        sources.into_iter().chain(writes.iter().enumerate().map(|(n, write)| format!("w{n} AS ({write})"))).collect();
    sql(format!("WITH {} {last}", ctes.join(", "))).bind_each(args)
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Ints(values) => values.len(),
            Column::Texts(values) => values.len(),
            Column::Blobs(values) => values.len(),
            Column::Bools(values) => values.len(),
        }
    }

    fn slice(&self, start: usize, end: usize) -> Column {
        match self {
            Column::Ints(values) => Column::Ints(values[start..end].to_vec()),
            Column::Texts(values) => Column::Texts(values[start..end].to_vec()),
            Column::Blobs(values) => Column::Blobs(values[start..end].to_vec()),
            Column::Bools(values) => Column::Bools(values[start..end].to_vec()),
        }
    }

    fn pg_type(&self) -> &'static str {
        match self {
            Column::Ints(_) => "int8",
            Column::Texts(_) => "text",
            Column::Blobs(_) => "bytea",
            Column::Bools(_) => "bool",
        }
    }
}

fn texts<'a>(values: impl Iterator<Item = &'a str>) -> Column {
    Column::Texts(values.map(|value| Some(value.to_string())).collect())
}

/// What storing messages that carry no idempotency key (so none can be a replay of
/// another) writes: the messages, their deliveries and what their instances store, as
/// sets, whatever their number. The outcomes are in the order of `messages`.
///
/// With `lease` (this node and how long), the deliveries are written leased to this node
/// from the ingest's time, so that the worker they are handed to needs no claim.
pub(super) async fn ingest_set(
    conn: &mut Conn<'_>,
    subscriptions: &mut Subscriptions,
    messages: Vec<NewMessage>,
    lease: Option<(&str, chrono::Duration)>,
) -> StoreResult<(Vec<IngestOutcome>, Writes)> {
    if messages.is_empty() {
        return Ok((Vec::new(), Writes::default()));
    }
    let instances: Vec<InstanceId> = messages.iter().map(|message| message.instance_id).collect();
    subscriptions.read(conn, &instances).await?;
    // Every LoginId of the batch, locked and counted in one read each.
    let logins: Vec<(InstanceId, String)> =
        messages.iter().filter_map(|m| m.login_id.clone().map(|login| (m.instance_id, login))).collect();
    subscriptions.sequences.read(conn, &logins).await?;
    let mut delivery_sequences = Vec::new();
    let mut outcomes = Vec::with_capacity(messages.len());
    let (mut delivery_ids, mut delivery_messages, mut delivery_endpoints, mut delivery_times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut delivery_leases, mut delivery_holders, mut delivery_logins) = (Vec::new(), Vec::new(), Vec::new());
    let mut message_ids = Vec::with_capacity(messages.len());
    for message in &messages {
        debug_assert!(message.idempotency_key.is_none(), "a keyed ingest may be a replay");
        let message_id = MessageId::generate();
        let endpoints = subscriptions.of(conn, message.instance_id, message.response_type).await?;
        let endpoints = subscriptions.number(conn, message.instance_id, message.login_id.as_deref(), endpoints).await?;
        let mut deliveries = Vec::with_capacity(endpoints.len());
        for (endpoint_id, sequence) in endpoints {
            delivery_sequences.push(sequence.map(super::messages::sequence_arg));
            // A numbered delivery carries its callback's LoginId, for an ordered endpoint's scan.
            delivery_logins.push(sequence.and(message.login_id.clone()));
            let id = DeliveryId::generate();
            delivery_ids.push(Some(id.as_str().to_string()));
            delivery_messages.push(Some(message_id.as_str().to_string()));
            delivery_endpoints.push(Some(endpoint_id.as_str().to_string()));
            delivery_times.push(Some(millis(message.now)));
            // An ordered endpoint's scan takes its deliveries, so a lease would only be given back.
            let leased_until =
                lease.filter(|_| !subscriptions.ordered(&endpoint_id)).map(|(_, lease)| message.now + lease);
            delivery_leases.push(leased_until.map(millis));
            delivery_holders.push(leased_until.and(lease).map(|(node, _)| node.to_string()));
            deliveries.push(ScheduledDelivery { id, endpoint_id, leased_until, sequence });
        }
        message_ids.push(message_id.clone());
        outcomes.push(IngestOutcome::Created { message_id, deliveries });
    }
    let mut rows = Rows::new()
        .column("id", texts(message_ids.iter().map(MessageId::as_str)))
        .column("instance_id", Column::Ints(messages.iter().map(|m| Some(m.instance_id.0)).collect()))
        .column("response_type", texts(messages.iter().map(|m| m.response_type.as_str())))
        .column("login_id", Column::Texts(messages.iter().map(|m| m.login_id.clone()).collect()))
        .column("request_id", Column::Texts(messages.iter().map(|m| m.request_id.clone()).collect()))
        .column("tag", Column::Texts(messages.iter().map(|m| m.tag.clone()).collect()))
        .column("body_sha256", texts(messages.iter().map(|m| m.body_sha256.as_str())))
        .column("created_at", Column::Ints(messages.iter().map(|m| Some(millis(m.now))).collect()));
    let mut added: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    for message in &messages {
        *added.entry(message.instance_id.0).or_default() += message.payload.len();
    }
    rows = rows.column("payload", Column::Blobs(messages.into_iter().map(|m| m.payload).collect()));
    let writes = Writes::default()
        .part(
            "m",
            rows,
            &["INSERT INTO messages (id, instance_id, response_type, login_id, request_id, tag, body_sha256, payload,
                                     created_at)
               SELECT id, instance_id, response_type, login_id, request_id, tag, body_sha256, payload, created_at FROM m"],
        )
        .part(
            "d",
            Rows::new()
                .column("id", Column::Texts(delivery_ids))
                .column("message_id", Column::Texts(delivery_messages))
                .column("endpoint_id", Column::Texts(delivery_endpoints))
                .column("at", Column::Ints(delivery_times))
                .column("claimed_until", Column::Ints(delivery_leases))
                .column("claimed_by", Column::Texts(delivery_holders))
                .column("sequence", Column::Ints(delivery_sequences))
                .column("login_id", Column::Texts(delivery_logins)),
            &["INSERT INTO deliveries (id, message_id, endpoint_id, status, next_attempt_at, created_at, updated_at,
                                       claimed_until, claimed_by, sequence, login_id)
               SELECT id, message_id, endpoint_id, 'pending', at, at, at, claimed_until, claimed_by, sequence, login_id
               FROM d"],
        );
    // What each instance stores, one row each. The instances' rows are locked in id order
    // (a sort under `FOR NO KEY UPDATE`), so two nodes' batches never wait on each other's
    // in opposite orders; the order in which a join alone locks rows is the planner's.
    let (instances, bytes): (Vec<i64>, Vec<usize>) = added.into_iter().unzip();
    let writes = writes.part(
        "b",
        Rows::new().column("instance_id", Column::Ints(instances.into_iter().map(Some).collect())).column(
            "bytes",
            Column::Ints(bytes.into_iter().map(|n| Some(i64::try_from(n).unwrap_or(i64::MAX))).collect()),
        ),
        &["UPDATE instances SET stored_bytes = stored_bytes + b.bytes
           FROM b JOIN (SELECT id FROM instances WHERE id IN (SELECT instance_id FROM b)
                        ORDER BY id FOR NO KEY UPDATE) locked ON locked.id = b.instance_id
           WHERE instances.id = locked.id"],
    );
    Ok((outcomes, writes))
}

/// What recording finished attempts and rescheduling their deliveries writes: one set of
/// rows, read by the attempts' insert and the deliveries' update. Each delivery at most once in `results` (an `UPDATE
/// … FROM` that matches a row twice applies one of them, unsaid which); a delivery
/// cancelled while its attempt was in flight stays cancelled.
pub(super) fn record_set(results: &[AttemptResult]) -> Writes {
    debug_assert!(
        results.iter().map(|r| &r.delivery_id).collect::<HashSet<_>>().len() == results.len(),
        "each delivery once"
    );
    let attempts = results.iter().map(|r| &r.attempt);
    let rows = Rows::new()
        .column("id", texts(attempts.clone().map(|a| a.id.as_str())))
        .column("delivery_id", texts(results.iter().map(|r| r.delivery_id.as_str())))
        .column("attempt_number", Column::Ints(attempts.clone().map(|a| Some(i64::from(a.attempt_number))).collect()))
        .column("started_at", Column::Ints(attempts.clone().map(|a| Some(millis(a.started_at))).collect()))
        .column(
            "latency_ms",
            Column::Ints(attempts.clone().map(|a| Some(i64::try_from(a.latency_ms).unwrap_or(i64::MAX))).collect()),
        )
        .column("status_code", Column::Ints(attempts.clone().map(|a| a.status_code.map(i64::from)).collect()))
        .column(
            "error_class",
            Column::Texts(attempts.clone().map(|a| a.error_class.map(|c| ErrorClass::as_str(c).to_string())).collect()),
        )
        .column("error_detail", Column::Texts(attempts.clone().map(|a| a.error_detail.clone()).collect()))
        .column("response_excerpt", Column::Texts(attempts.clone().map(|a| a.response_excerpt.clone()).collect()))
        .column(
            "response_bytes",
            Column::Ints(
                attempts.clone().map(|a| a.response_bytes.map(|n| i64::try_from(n).unwrap_or(i64::MAX))).collect(),
            ),
        )
        .column("succeeded", Column::Bools(attempts.map(|a| a.succeeded).collect()))
        .column("status", texts(results.iter().map(|r| r.new_status.as_str())))
        .column("next_attempt_at", Column::Ints(results.iter().map(|r| r.next_attempt_at.map(millis)).collect()));
    Writes::default().part(
        "r",
        rows,
        &[
            "INSERT INTO attempts (id, delivery_id, attempt_number, started_at, latency_ms, status_code, error_class,
                                   error_detail, response_excerpt, response_bytes, succeeded)
             SELECT id, delivery_id, attempt_number, started_at, latency_ms, status_code, error_class, error_detail,
                    response_excerpt, response_bytes, succeeded FROM r",
            // A delivery cancelled while its attempt was in flight stays cancelled. Each row
            // is found by its key (`id = ANY` of the batch's ids, an index scan PostgreSQL
            // estimates at a few rows), and the status is tested as `status || ''` so that
            // no partial index on pending deliveries matches. Written as a plain join on
            // `status = 'pending'`, PostgreSQL (guessing a few dozen pending rows) read every
            // entry of such an index, dead ones included, to join it with the batch: 4,398
            // entries for 27 records after 5,000 callbacks, more as the history grows; and
            // without a usable index it read the whole table instead.
            "UPDATE deliveries
             SET status = r.status, attempts_made = r.attempt_number, next_attempt_at = r.next_attempt_at,
                 claimed_until = NULL, updated_at = r.started_at
             FROM r
             WHERE deliveries.id = ANY (ARRAY(SELECT delivery_id FROM r)) AND deliveries.id = r.delivery_id
               AND deliveries.status || '' = 'pending'",
        ],
    )
}

/// Attempt records with their places in a batch.
pub(super) type Placed = Vec<(usize, AttemptResult)>;

/// Which of `results` can go into one [`record_set`]: the first result of each delivery;
/// the others (the same delivery recorded twice in one batch, which the worker never
/// does) are returned to be applied one by one after it, in order.
pub(super) fn first_of_each(results: Placed) -> (Placed, Placed) {
    let mut seen: HashSet<DeliveryId> = HashSet::with_capacity(results.len());
    results.into_iter().partition(|(_, result)| seen.insert(result.delivery_id.clone()))
}

/// What chaining writes on PostgreSQL, whatever the number of entries: the entries, the
/// deletion of the queue rows they were sealed from (if any), the instances' new heads.
pub(super) fn sealed_set(sealed: &[Sealed], heads: &[NewHead]) -> Writes {
    let facts = sealed.iter().map(|one| &one.facts);
    let entries = Rows::new()
        .column("instance_id", Column::Ints(sealed.iter().map(|one| Some(one.instance.0)).collect()))
        .column("seq", Column::Ints(sealed.iter().map(|one| Some(seq_arg(one.seq))).collect()))
        .column("attempt_id", texts(facts.clone().map(|f| f.attempt_id.as_str())))
        .column("message_id", texts(facts.clone().map(|f| f.message_id.as_str())))
        .column("body_sha256", texts(facts.clone().map(|f| f.body_sha256.as_str())))
        .column("endpoint_url", texts(facts.clone().map(|f| f.endpoint_url.as_str())))
        .column("attempt_number", Column::Ints(facts.clone().map(|f| Some(i64::from(f.attempt))).collect()))
        .column("attempted_at", Column::Ints(sealed.iter().map(|one| Some(one.attempted_at)).collect()))
        .column("status_code", Column::Ints(facts.clone().map(|f| f.status.map(i64::from)).collect()))
        .column("error_class", Column::Texts(facts.map(|f| f.error_class.clone()).collect()))
        .column("hash", Column::Blobs(sealed.iter().map(|one| bytes::Bytes::copy_from_slice(&one.hash)).collect()))
        .column("pending_id", Column::Ints(sealed.iter().map(|one| one.pending_id).collect()));
    let heads = Rows::new()
        .column("instance_id", Column::Ints(heads.iter().map(|(instance, _, _)| Some(instance.0)).collect()))
        .column("seq", Column::Ints(heads.iter().map(|(_, seq, _)| Some(seq_arg(*seq))).collect()))
        .column("hash", Column::Blobs(heads.iter().map(|(_, _, hash)| bytes::Bytes::copy_from_slice(hash)).collect()));
    Writes::default()
        .part(
            "e",
            entries,
            &[
                "INSERT INTO ledger_entries (instance_id, seq, attempt_id, message_id, body_sha256, endpoint_url,
                                             attempt_number, attempted_at, status_code, error_class, hash)
                 SELECT instance_id, seq, attempt_id, message_id, body_sha256, endpoint_url, attempt_number,
                        attempted_at, status_code, error_class, hash FROM e",
                "DELETE FROM ledger_pending WHERE id IN (SELECT pending_id FROM e)",
            ],
        )
        .part(
            "h",
            heads,
            &["INSERT INTO ledger_heads (instance_id, seq, hash) SELECT instance_id, seq, hash FROM h
               ON CONFLICT (instance_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash"],
        )
}

/// Queues attempts recorded in this transaction for the sealer, with their entries' facts,
/// when another node holds the chain (PostgreSQL only).
pub(super) fn pending_set(records: &[&AttemptResult]) -> Writes {
    let attempts = records.iter().map(|r| &r.attempt);
    let sources = records.iter().map(|r| &r.ledger);
    let rows = Rows::new()
        .column("attempt_id", texts(attempts.clone().map(|a| a.id.as_str())))
        .column("instance_id", Column::Ints(sources.clone().map(|s| Some(s.instance_id.0)).collect()))
        .column("message_id", texts(sources.clone().map(|s| s.message_id.as_str())))
        .column("body_sha256", texts(sources.clone().map(|s| s.body_sha256.as_str())))
        .column("endpoint_url", texts(sources.map(|s| s.endpoint_url.as_str())))
        .column("attempt_number", Column::Ints(attempts.clone().map(|a| Some(i64::from(a.attempt_number))).collect()))
        .column("attempted_at", Column::Ints(attempts.clone().map(|a| Some(millis(a.started_at))).collect()))
        .column("status_code", Column::Ints(attempts.clone().map(|a| a.status_code.map(i64::from)).collect()))
        .column(
            "error_class",
            Column::Texts(attempts.map(|a| a.error_class.map(|c| ErrorClass::as_str(c).to_string())).collect()),
        );
    Writes::default().part(
        "p",
        rows,
        &["INSERT INTO ledger_pending (attempt_id, instance_id, message_id, body_sha256, endpoint_url,
                                       attempt_number, attempted_at, status_code, error_class)
           SELECT attempt_id, instance_id, message_id, body_sha256, endpoint_url, attempt_number, attempted_at,
                  status_code, error_class FROM p"],
    )
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;
    use crate::store::rows::Cols;
    use crate::store::sql::SqlStore;

    /// A new database in the cluster `scripts/test` starts (`FINHOOK_TEST_POSTGRES`).
    async fn postgres_store() -> SqlStore {
        let server = std::env::var("FINHOOK_TEST_POSTGRES").expect(
            "the shared-store tests need PostgreSQL: run scripts/test, or set FINHOOK_TEST_POSTGRES=postgres://...",
        );
        let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect to FINHOOK_TEST_POSTGRES");
        let name = format!("finhook_unit_{}", DeliveryId::generate().as_str().to_lowercase().replace('-', "_"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create database");
        let mut url = url::Url::parse(&server).expect("url");
        url.set_path(&name);
        let key = finhook_core::seal::SealingKey::generate().0;
        SqlStore::open_postgres(url.as_str(), key).await.expect("open")
    }

    fn delivered(delivery_id: DeliveryId) -> AttemptResult {
        super::super::fixtures::delivered(delivery_id, InstanceId(1))
    }

    /// A batch's records find their deliveries by key. With statistics that say few
    /// deliveries are pending (the usual state: most are delivered), PostgreSQL planned the
    /// join through a partial index on pending deliveries, whose dead entries it then read
    /// one by one, batch after batch; without such an index, through the whole table.
    #[tokio::test]
    async fn a_batch_of_records_finds_its_deliveries_by_key() {
        let store = postgres_store().await;
        let pending: Vec<DeliveryId> = (0..30).map(|_| DeliveryId::generate()).collect();
        let setup = [
            "INSERT INTO instances (name, customer_id, mode, api_key_hash, created_at) VALUES ('plans', 'c', 'live', 'h', 0)"
                .to_string(),
            "INSERT INTO messages (id, instance_id, response_type, body_sha256, payload, created_at)
             SELECT 'm' || g, 1, 'KYC', 'x', '\\x7b7d', 0 FROM generate_series(1, 5000) g"
                .to_string(),
            "INSERT INTO deliveries (id, message_id, endpoint_id, status, created_at, updated_at)
             SELECT 'd' || g, 'm' || g, 'e', 'delivered', 0, 0 FROM generate_series(1, 5000) g"
                .to_string(),
            format!(
                "INSERT INTO deliveries (id, message_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
                 SELECT id, 'm1', 'e', 'pending', 0, 0, 0 FROM UNNEST(ARRAY['{}']) AS id",
                pending.iter().map(DeliveryId::as_str).collect::<Vec<_>>().join("', '")
            ),
            "ANALYZE deliveries".to_string(),
        ];
        for statement in setup {
            store.pools.write(crate::store::db::sql(statement)).await.expect("setup");
        }
        let results: Vec<AttemptResult> = pending.into_iter().map(delivered).collect();
        let statements = record_set(&results).statements();
        assert_eq!(statements.len(), 1, "one statement for the batch");
        let Some(statement) = statements.into_iter().next() else { return };
        let plan: Vec<String> = store
            .pools
            .read_all(statement.explained_on_postgres())
            .await
            .expect("explain")
            .iter()
            .map(|row| row.text("QUERY PLAN").expect("plan line"))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("deliveries_pkey"), "{plan}");
        assert!(
            !plan.contains("deliveries_pending_by")
                && !plan.contains("deliveries_due")
                && !plan.contains("Seq Scan on deliveries"),
            "{plan}"
        );
    }
}
