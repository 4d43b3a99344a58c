//! The delivery queue on either database. Taking due work is one of the few places where
//! the databases differ: the embedded store only reads (its one process keeps its claims
//! in memory), a shared store leases rows with `FOR UPDATE SKIP LOCKED` so that two nodes
//! never take the same delivery. Both read through the partial index
//! `deliveries_pending_by_endpoint (endpoint_id, next_attempt_at, id) WHERE status =
//! 'pending'`, so the cost of a take is the rows it returns, not the backlog's size; an
//! ordered endpoint's take also steps through `deliveries_pending_by_login` ([`ordered_rows`]).

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId, MessageId, NodeId};
use finhook_core::secret::EndpointSecret;

use super::payload_log::{load, StoredBody, BODY_COLUMNS};
use super::SqlStore;
use crate::store::db::{placeholders, sql, Backend, Conn, Row, Sql};
use crate::store::queue::{CheckedPayload, DeliveryQueue, NODE_SILENT_AFTER};
use crate::store::rows::*;
use crate::store::{
    AttemptRecord, AttemptResult, DispatchEndpoint, DueDelivery, ErrorClass, Signing, StoreResult, TakenDue,
};

/// The most ids one `IN (...)` list binds; larger requests are split.
const MAX_IDS: usize = 500;

fn due_from(row: &impl crate::store::rows::Cols, endpoint: &EndpointId) -> StoreResult<DueDelivery> {
    Ok(DueDelivery {
        delivery_id: DeliveryId::parse(&row.text("id")?).map_err(corrupt)?,
        message_id: MessageId::parse(&row.text("message_id")?).map_err(corrupt)?,
        endpoint_id: endpoint.clone(),
        attempt_number: u32::try_from(row.int("attempts_made")? + 1).map_err(corrupt)?,
        sequence: row.opt_int("sequence")?.map(u64::try_from).transpose().map_err(corrupt)?,
    })
}

/// Whether a delivery's lease is free at `$2`: none, run out, or held by a node that has
/// not said it is alive since `$silent` (its heartbeat stopped: it crashed or lost the
/// database), found through the primary key of `nodes`.
fn lease_is_free(silent: usize) -> String {
    format!(
        "(claimed_until IS NULL OR claimed_until <= $2
          OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = deliveries.claimed_by AND n.seen_at > ${silent}))"
    )
}

/// How many pending deliveries an ordered endpoint's scan looks at in due order before it
/// looks LoginId by LoginId instead ([`ordered_heads_sql`]).
const ORDERED_WINDOW: u32 = 256;

/// Whether the delivery `row` is the first still pending of its LoginId at its endpoint
/// (or has no LoginId): one step into `deliveries_pending_by_login (endpoint_id, login_id,
/// sequence) WHERE status = 'pending'`, whatever the LoginId's history.
fn first_of_its_login(row: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM deliveries d2
                     WHERE d2.endpoint_id = {row}.endpoint_id AND d2.login_id = {row}.login_id
                       AND d2.status = 'pending' AND d2.sequence < {row}.sequence)"
    )
}

/// An ordered endpoint's first [`ORDERED_WINDOW`] pending deliveries in due order, each
/// saying whether it may go now (`first`: the first of its LoginId).
fn ordered_window_sql(endpoint: &EndpointId) -> Sql {
    sql(format!(
        "SELECT id, message_id, attempts_made, next_attempt_at, sequence, {} AS first FROM deliveries
         WHERE endpoint_id = $1 AND status = 'pending' ORDER BY next_attempt_at, id LIMIT $2",
        first_of_its_login("deliveries")
    ))
    .bind(endpoint.as_str())
    .bind(i64::from(ORDERED_WINDOW))
}

/// The first `$2` of an ordered endpoint's deliveries that may go, in due order, found
/// LoginId by LoginId: of each LoginId with a pending delivery, the one numbered first,
/// and every pending delivery without a LoginId. Through `deliveries_pending_by_login`:
/// the LoginIds one index step each (a recursive "next LoginId after this one", as neither
/// database skips through an index by itself), each one's first delivery one more, so the
/// cost is two steps per LoginId waiting, whatever the depth of its queue.
///
/// For when the window in due order ([`ordered_window_sql`]) is full of deliveries waiting
/// behind others of their LoginId, deeper queued LoginIds' first deliveries past it. (The
/// scan used to walk every pending delivery and check each against every callback of its
/// LoginId: 20 LoginIds with 1,000 callbacks each went out at 13/s.) A superseded delivery
/// is never pending.
fn ordered_heads_sql(endpoint: &EndpointId, limit: u32) -> Sql {
    sql("WITH RECURSIVE logins (login_id) AS (
             SELECT min(login_id) FROM deliveries WHERE endpoint_id = $1 AND status = 'pending'
           UNION ALL
             SELECT (SELECT min(d.login_id) FROM deliveries d
                     WHERE d.endpoint_id = $1 AND d.status = 'pending' AND d.login_id > logins.login_id)
             FROM logins WHERE logins.login_id IS NOT NULL),
         candidates (id) AS (
             SELECT (SELECT d.id FROM deliveries d
                     WHERE d.endpoint_id = $1 AND d.status = 'pending' AND d.login_id = logins.login_id
                     ORDER BY d.sequence LIMIT 1)
             FROM logins WHERE logins.login_id IS NOT NULL
           UNION ALL
             SELECT id FROM deliveries WHERE endpoint_id = $1 AND status = 'pending' AND login_id IS NULL)
         SELECT id, message_id, attempts_made, next_attempt_at, sequence FROM deliveries
         WHERE id IN (SELECT id FROM candidates) ORDER BY next_attempt_at, id LIMIT $2")
    .bind(endpoint.as_str())
    .bind(i64::from(limit))
}

/// Up to `limit` of an ordered endpoint's deliveries that may go, in due order (due now or
/// not): those of the first [`ORDERED_WINDOW`] in due order that are first of their
/// LoginId, or, when the window is full and holds fewer than `limit` of them, LoginId by
/// LoginId ([`ordered_heads_sql`]). Many LoginIds with short queues are served by the
/// window; a few with deep ones by the heads.
async fn ordered_rows(conn: &mut Conn<'_>, endpoint: &EndpointId, limit: u32) -> StoreResult<Vec<Row>> {
    let window = conn.fetch_all(ordered_window_sql(endpoint)).await?;
    let full = window.len() >= usize::try_from(ORDERED_WINDOW).unwrap_or(usize::MAX);
    let mut first = Vec::with_capacity(window.len());
    for row in window {
        if row.flag("first")? {
            first.push(row);
        }
    }
    if !full || first.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
        first.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        return Ok(first);
    }
    Ok(conn.fetch_all(ordered_heads_sql(endpoint, limit)).await?)
}

/// A shared store's lease for node `$5` on up to `$4` due deliveries of endpoint `$3`
/// (of an ordered one, only among `among`, never empty, checked again as first of their
/// LoginId): the rows are locked with `SKIP LOCKED`, so a node never waits for, nor takes,
/// another's.
fn lease_due_sql(
    endpoint: &EndpointId,
    now: DateTime<Utc>,
    claim_until: DateTime<Utc>,
    take: u32,
    node: &NodeId,
    among: Option<&[String]>,
) -> Sql {
    let ordered = match among {
        Some(ids) => {
            format!("id IN ({}) AND {} AND ", placeholders(7, ids.len()), first_of_its_login("deliveries"))
        }
        None => String::new(),
    };
    let query = sql(format!(
        "UPDATE deliveries SET claimed_until = $1, claimed_by = $5
         WHERE id IN (SELECT id FROM deliveries
                      WHERE {ordered}endpoint_id = $3 AND status = 'pending' AND next_attempt_at <= $2 AND {}
                      ORDER BY next_attempt_at, id LIMIT $4
                      FOR UPDATE SKIP LOCKED)
         RETURNING id, message_id, attempts_made, next_attempt_at, sequence",
        lease_is_free(6),
    ))
    .bind(millis(claim_until))
    .bind(millis(now))
    .bind(endpoint.as_str())
    .bind(i64::from(take))
    .bind(node.as_str())
    .bind(millis(now - NODE_SILENT_AFTER));
    match among {
        Some(ids) => query.bind_each(ids.iter().map(String::as_str)),
        None => query,
    }
}

/// The first `limit` pending deliveries of an unordered `endpoint` in due order, on the
/// embedded store, through the partial index of pending deliveries (the order is the
/// index's, so nothing is sorted and nothing past `limit` is read).
fn pending_of_endpoint_sql(endpoint: &EndpointId, limit: u32) -> Sql {
    sql("SELECT id, message_id, attempts_made, next_attempt_at, sequence FROM deliveries
         WHERE endpoint_id = $1 AND status = 'pending' ORDER BY next_attempt_at, id LIMIT $2")
    .bind(endpoint.as_str())
    .bind(i64::from(limit))
}

/// Which of `ids` are still pending, on the embedded store: looked up by primary key.
///
/// `+status` (SQLite's way to say "not through an index") keeps the planner off
/// `deliveries_due (status, next_attempt_at)`. With no statistics, SQLite guesses ten rows
/// for `status = 'pending'`, so from five ids on it preferred that index over five key
/// lookups and walked every pending delivery: with 10,000 pending for one hanging
/// endpoint, each claim of a healthy endpoint's fresh deliveries read 300 to 400 pages
/// instead of a few per id, and the healthy endpoint's rate fell by a third.
fn still_pending_sql(ids: &[DeliveryId]) -> Sql {
    sql(format!("SELECT id FROM deliveries WHERE id IN ({}) AND +status = 'pending'", placeholders(1, ids.len())))
        .bind_each(ids.iter().map(DeliveryId::as_str))
}

#[async_trait]
impl DeliveryQueue for SqlStore {
    fn claims_are_leases(&self) -> bool {
        self.backend() == Backend::Postgres
    }

    fn lease_new_deliveries(&self, lease: chrono::Duration) {
        if self.claims_are_leases() {
            self.writes.lease_new_deliveries(lease);
        }
    }

    fn endpoints_version(&self) -> u64 {
        self.endpoints_version.load(Ordering::Acquire)
    }

    async fn enabled_endpoints(&self) -> StoreResult<Vec<EndpointId>> {
        self.pools
            .read_all(sql("SELECT id FROM endpoints WHERE enabled ORDER BY id"))
            .await?
            .iter()
            .map(|row| EndpointId::parse(&row.text("id")?).map_err(corrupt))
            .collect()
    }

    async fn pending_deliveries(&self) -> StoreResult<u64> {
        // Counted through the partial index of pending deliveries: the cost is the backlog's.
        let row =
            self.pools.read_optional(sql("SELECT count(*) AS n FROM deliveries WHERE status = 'pending'")).await?;
        let count = row.map(|row| row.int("n")).transpose()?.unwrap_or(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn dispatch_endpoint(&self, id: &EndpointId, now: DateTime<Utc>) -> StoreResult<Option<DispatchEndpoint>> {
        let Some(row) = self
            .pools
            .read_optional(
                sql(format!(
                    "SELECT {ENDPOINT_COLUMNS}, (SELECT name FROM instances i WHERE i.id = endpoints.instance_id) AS instance_name
                     FROM endpoints WHERE id = $1"
                ))
                .bind(id.as_str()),
            )
            .await?
        else {
            return Ok(None);
        };
        let endpoint = endpoint_from(&row)?;
        let instance_name = row.text("instance_name")?;
        // The current secret first: it is the one without an end.
        let secrets = self
            .pools
            .read_all(
                sql("SELECT secret, expires_at FROM endpoint_secrets
                     WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2)
                     ORDER BY expires_at IS NULL DESC, created_at DESC, expires_at DESC")
                .bind(id.as_str())
                .bind(millis(now)),
            )
            .await?
            .iter()
            .map(|row| {
                let secret = self.sealing.open(&row.text("secret")?, id.as_str())?;
                let expires_at = row.opt_int("expires_at")?.map(time_of).transpose()?;
                Ok((EndpointSecret::parse(&secret).map_err(corrupt)?, expires_at))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let signing_keys = match endpoint.signing {
            Signing::Hmac => Vec::new(),
            Signing::Ed25519 => super::signing_keys::opened(self, endpoint.instance_id, now).await?,
        };
        let identity = match endpoint.client_certificate {
            Some(_) => super::endpoints::identity(self, &endpoint.id).await?.map(std::sync::Arc::new),
            None => None,
        };
        Ok(Some(DispatchEndpoint {
            identity,
            ordering: endpoint.ordering,
            signing: endpoint.signing,
            signing_keys,
            id: endpoint.id,
            instance_id: endpoint.instance_id,
            instance_name,
            url: endpoint.url,
            retry: endpoint.retry,
            success: endpoint.success,
            enabled: endpoint.enabled,
            secrets,
        }))
    }

    async fn take_due(
        &self,
        endpoint: &EndpointId,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        take: u32,
        held: u32,
        ordered: bool,
    ) -> StoreResult<TakenDue> {
        match self.backend() {
            Backend::Sqlite => {
                // One read, no write: the pending rows in due order, the first not yet
                // due (if the limit leaves room for it) telling when to look again.
                let limit = take.saturating_add(held);
                let rows = match ordered {
                    true => ordered_rows(&mut self.pools.reader().await?.conn(), endpoint, limit).await?,
                    false => self.pools.read_all(pending_of_endpoint_sql(endpoint, limit)).await?,
                };
                let mut taken = TakenDue::default();
                for row in &rows {
                    let due_at = time_of(row.int("next_attempt_at")?)?;
                    if due_at > now {
                        taken.next_due_at = Some(due_at);
                        return Ok(taken);
                    }
                    taken.due.push(due_from(row, endpoint)?);
                }
                taken.more = rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
                Ok(taken)
            }
            Backend::Postgres => {
                let mut tx = self.pools.begin().await?;
                // An ordered endpoint's candidates are read first; others' leases skipped
                // there are why it reads twice the lane's room.
                let among = match ordered {
                    true => {
                        let limit = take.saturating_mul(2).saturating_add(64);
                        let rows = ordered_rows(&mut tx.conn(), endpoint, limit).await?;
                        Some(rows.iter().map(|row| row.text("id")).collect::<Result<Vec<_>, _>>()?)
                    }
                    false => None,
                };
                let rows = match among.as_deref() {
                    Some([]) => Vec::new(), // no candidate: nothing to lease
                    among => {
                        tx.conn().fetch_all(lease_due_sql(endpoint, now, claim_until, take, &self.node, among)).await?
                    }
                };
                let mut due = rows
                    .iter()
                    .map(|row| Ok((row.int("next_attempt_at")?, due_from(row, endpoint)?)))
                    .collect::<StoreResult<Vec<_>>>()?;
                // RETURNING does not keep the subquery's order.
                due.sort_by(|(a, x), (b, y)| (a, x.delivery_id.as_str()).cmp(&(b, y.delivery_id.as_str())));
                let mut taken = TakenDue {
                    due: due.into_iter().map(|(_, due)| due).collect(),
                    more: rows.len() >= usize::try_from(take).unwrap_or(usize::MAX),
                    next_due_at: None,
                };
                if !taken.more {
                    // Deliveries leased by others are found by the worker's poll when
                    // their lease runs out; this is the next one waiting for its time.
                    let next = tx
                        .conn()
                        .fetch_optional(
                            sql("SELECT next_attempt_at FROM deliveries
                                 WHERE endpoint_id = $1 AND status = 'pending' AND next_attempt_at > $2
                                 ORDER BY next_attempt_at LIMIT 1")
                            .bind(endpoint.as_str())
                            .bind(millis(now)),
                        )
                        .await?;
                    taken.next_due_at = next.map(|row| time_of(row.int("next_attempt_at")?)).transpose()?;
                }
                tx.commit().await?;
                Ok(taken)
            }
        }
    }

    async fn claim(
        &self,
        ids: &[DeliveryId],
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
    ) -> StoreResult<Vec<DeliveryId>> {
        let mut claimed = Vec::with_capacity(ids.len());
        if self.backend() == Backend::Sqlite {
            // No lease to write: this process is the only one delivering from the file.
            // Only the ones still pending (an endpoint deleted since cancels its own).
            for chunk in ids.chunks(MAX_IDS) {
                for row in self.pools.read_all(still_pending_sql(chunk)).await? {
                    claimed.push(DeliveryId::parse(&row.text("id")?).map_err(corrupt)?);
                }
            }
            return Ok(claimed);
        }
        for chunk in ids.chunks(MAX_IDS) {
            let query = sql(format!(
                "UPDATE deliveries SET claimed_until = $1, claimed_by = $3
                 WHERE id IN (SELECT id FROM deliveries
                              WHERE id IN ({}) AND status = 'pending' AND {}
                              FOR UPDATE SKIP LOCKED)
                 RETURNING id",
                placeholders(5, chunk.len()),
                lease_is_free(4)
            ))
            .bind(millis(claim_until))
            .bind(millis(now))
            .bind(self.node.as_str())
            .bind(millis(now - NODE_SILENT_AFTER))
            .bind_each(chunk.iter().map(DeliveryId::as_str));
            let mut tx = self.pools.begin().await?;
            let rows = tx.conn().fetch_all(query).await?;
            tx.commit().await?;
            for row in &rows {
                claimed.push(DeliveryId::parse(&row.text("id")?).map_err(corrupt)?);
            }
        }
        Ok(claimed)
    }

    async fn payloads(&self, ids: &[MessageId]) -> StoreResult<Vec<(MessageId, CheckedPayload)>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_IDS) {
            let query =
                sql(format!("SELECT id, {BODY_COLUMNS} FROM messages WHERE id IN ({})", placeholders(1, chunk.len())))
                    .bind_each(chunk.iter().map(MessageId::as_str));
            let rows = self.pools.read_all(query).await?;
            let bodies = rows.iter().map(StoredBody::of).collect::<StoreResult<Vec<_>>>()?;
            for (row, payload) in rows.iter().zip(load(self.payload_dir(), bodies).await?) {
                let id = MessageId::parse(&row.text("id")?).map_err(corrupt)?;
                match payload {
                    Ok(payload) => out.push((id, payload)),
                    // Left out (its deliveries wait, and say why each time they are looked
                    // at); the other messages' deliveries go on. Never sent as it reads now.
                    Err(error @ crate::store::StoreError::Corrupt(_)) => {
                        tracing::error!(message = %id, error = %error, "a callback's stored body is corrupt; not sent");
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(out)
    }

    async fn record_attempt(&self, result: AttemptResult) -> StoreResult<()> {
        self.writes.record(result).await
    }

    async fn heartbeat(&self, now: DateTime<Utc>) -> StoreResult<()> {
        if !self.claims_are_leases() {
            return Ok(());
        }
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        conn.execute(
            sql("INSERT INTO nodes (id, seen_at) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at")
            .bind(self.node.as_str())
            .bind(millis(now)),
        )
        .await?;
        // Nodes that stopped long ago: a row per process start would otherwise pile up.
        conn.execute(sql("DELETE FROM nodes WHERE seen_at < $1").bind(millis(now - chrono::Duration::days(1)))).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release(&self, ids: &[DeliveryId]) -> StoreResult<()> {
        if !self.claims_are_leases() {
            return Ok(());
        }
        for chunk in ids.chunks(MAX_IDS) {
            // Only this node's claims: one that ran out and passed to another node stays.
            let query = sql(format!(
                "UPDATE deliveries SET claimed_until = NULL
                 WHERE id IN ({}) AND status = 'pending' AND claimed_by = $1",
                placeholders(2, chunk.len())
            ))
            .bind(self.node.as_str())
            .bind_each(chunk.iter().map(DeliveryId::as_str));
            self.pools.write(query).await?;
        }
        Ok(())
    }
}

/// Records one attempt and reschedules its delivery on `conn`: inside the group commit's
/// transaction, or a savepoint of it.
pub(super) async fn record_on(conn: &mut Conn<'_>, result: AttemptResult) -> StoreResult<()> {
    // Both in one round trip on SQLite.
    conn.execute_all(record_statements(result)).await?;
    Ok(())
}

/// The statements that record one attempt and reschedule its delivery. (Its ledger entry
/// is chained for the whole batch, `ledger::chain_recorded`.)
pub(super) fn record_statements(result: AttemptResult) -> Vec<Sql> {
    let (number, started_at) = (result.attempt.attempt_number, result.attempt.started_at);
    let insert = insert_attempt(&result.delivery_id, result.attempt);
    // A delivery cancelled while the attempt was in flight stays cancelled.
    let reschedule =
        sql("UPDATE deliveries SET status = $1, attempts_made = $2, next_attempt_at = $3, claimed_until = NULL,
                                   updated_at = $4
             WHERE id = $5 AND status = 'pending'")
        .bind(result.new_status.as_str())
        .bind(i64::from(number))
        .bind(result.next_attempt_at.map(millis))
        .bind(millis(started_at))
        .bind(result.delivery_id.as_str());
    vec![insert, reschedule]
}

/// The row of one attempt of `delivery`.
pub(super) fn insert_attempt(delivery: &DeliveryId, attempt: AttemptRecord) -> Sql {
    sql("INSERT INTO attempts (id, delivery_id, attempt_number, started_at, latency_ms, status_code, error_class,
                                   error_detail, response_excerpt, response_bytes, succeeded)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
    .bind(attempt.id.as_str())
    .bind(delivery.as_str())
    .bind(i64::from(attempt.attempt_number))
    .bind(millis(attempt.started_at))
    .bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
    .bind(attempt.status_code.map(i64::from))
    .bind(attempt.error_class.map(ErrorClass::as_str))
    .bind(attempt.error_detail)
    .bind(attempt.response_excerpt)
    .bind(attempt.response_bytes.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
    .bind(attempt.succeeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::{finished_before_sql, oldest_pending_sql};

    /// What SQLite plans for `query`: one line per step, as `EXPLAIN QUERY PLAN` says it.
    async fn plan(store: &SqlStore, query: Sql) -> Vec<String> {
        let rows = store.pools.read_all(query.explained()).await.expect("explain");
        rows.iter().map(|row| row.text("detail").expect("detail")).collect()
    }

    /// The planner has no statistics (finhook never runs `ANALYZE`), so it guesses; these
    /// are the guesses the delivery path depends on. A plan that walks `deliveries_due`
    /// or scans `deliveries` costs time in proportion to the backlog, on every call; one that
    /// scans `messages` reads every payload.
    #[tokio::test]
    async fn the_delivery_path_reads_through_keys_whatever_the_backlog() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("plans.db").display());
        let store = SqlStore::open_sqlite(&url, None).await.expect("open");
        for count in [1, 2, 5, 64, MAX_IDS] {
            let ids: Vec<DeliveryId> = (0..count).map(|_| DeliveryId::generate()).collect();
            let steps = plan(&store, still_pending_sql(&ids)).await;
            assert_eq!(
                steps,
                vec!["SEARCH deliveries USING INDEX sqlite_autoindex_deliveries_1 (id=?)".to_string()],
                "a claim of {count} ids"
            );
        }
        let endpoint = EndpointId::generate();
        let steps = plan(&store, pending_of_endpoint_sql(&endpoint, 64)).await;
        assert_eq!(steps, ["SEARCH deliveries USING INDEX deliveries_pending_by_endpoint (endpoint_id=?)"]);
        // An ordered endpoint's candidates: LoginId after LoginId, and each one's first
        // delivery, through the index by LoginId; then each candidate by its key.
        let steps = plan(&store, ordered_heads_sql(&endpoint, 64)).await;
        let by_login = |step: &String| step.contains("INDEX deliveries_pending_by_login (endpoint_id=?");
        assert!(
            steps.iter().filter(|step| by_login(step)).count() >= 3
                && steps
                    .iter()
                    .any(|step| step.contains("INDEX deliveries_pending_by_login (endpoint_id=? AND login_id>?)"))
                && steps
                    .iter()
                    .any(|step| step.contains("INDEX deliveries_pending_by_login (endpoint_id=? AND login_id=?)"))
                && steps.iter().any(|step| step.contains("USING INDEX sqlite_autoindex_deliveries_1 (id=?)"))
                && !steps.iter().any(|step| step.starts_with("SCAN d") || step.contains("deliveries_due")),
            "{steps:?}"
        );
        // The window in due order, each checked in one step by its LoginId and number.
        let steps = plan(&store, ordered_window_sql(&endpoint)).await;
        assert!(
            steps.first().is_some_and(|step| step.contains("INDEX deliveries_pending_by_endpoint (endpoint_id=?)"))
                && steps.iter().any(|step| step
                    .contains("INDEX deliveries_pending_by_login (endpoint_id=? AND login_id=? AND sequence<?)"))
                && !steps.iter().any(|step| step.starts_with("SCAN")),
            "{steps:?}"
        );
        let steps = plan(&store, oldest_pending_sql()).await;
        assert!(
            steps.iter().any(|step| step.contains("COVERING INDEX deliveries_pending_by_endpoint (endpoint_id=?)"))
                && !steps.iter().any(|step| step.contains("deliveries_due") || step.starts_with("SCAN d")),
            "the oldest pending delivery, per endpoint through the partial index: {steps:?}"
        );
        // The retention sweep holds the writer: it must not read every message to find none.
        let steps = plan(&store, finished_before_sql(Utc::now())).await;
        assert!(
            steps.iter().any(|step| step.contains("INDEX messages_by_created_at (created_at<?)"))
                && !steps.iter().any(|step| step.starts_with("SCAN m")),
            "messages past retention, through the index on their time: {steps:?}"
        );
    }
}
