//! [`SqlStore`]: the one implementation of [`Store`], on SQLite or PostgreSQL.
//!
//! Every query is written once (see [`super::db`] for how it runs on either database). The
//! backends differ in three named places only, each explained where it is:
//! - start-up ([`open`]): the SQLite file's lock and secrets-key file, or a PostgreSQL pool;
//! - group commit ([`batch`]), the same task on both: ingests and attempt records share one
//!   commit per batch; how a batch begins (`BEGIN IMMEDIATE` on SQLite) and how it is
//!   written (sets of rows, [`sets`], on PostgreSQL; write by write on SQLite) differ;
//! - taking due work ([`queue`]): a plain read on SQLite (its one process keeps claims in
//!   memory, and writes none), a lease with `FOR UPDATE SKIP LOCKED` among PostgreSQL
//!   nodes, where a dead node's leases expire.

mod activity;
mod audit;
mod batch;
mod endpoints;
mod events;
mod feed;
#[cfg(test)]
mod fixtures;
mod health;
mod instance_cache;
mod ledger;
mod messages;
mod migrations;
pub mod open;
pub(crate) mod payload_log;
mod portal;
mod queue;
mod recovery;
mod sandbox;
mod sequence;
mod sets;
mod signing_keys;

use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};
use finhook_core::seal::SealingKey;
use finhook_core::secret::{EndpointSecret, KeyHash};
use finhook_core::signing::asymmetric::SigningKey;

use super::certificate::CertificateReport;
use super::db::{placeholders, sql, Backend, Pools, Sql};
use super::events::EventStore;
use super::ledger::LedgerStore;
use super::rows::*;
use super::*;
use payload_log::BODY_COLUMNS;

/// The store over either database. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SqlStore {
    pools: Pools,
    /// The hot writes (ingests, attempt records, the health probe) go through the group
    /// commit: many writes to one fsync.
    writes: batch::BatchWriter,
    /// Seals endpoint secrets at rest; every node of a shared store must share it.
    sealing: SealingKey,
    /// The embedded store's lock file, held until [`Store::close`] or the end of the store;
    /// the OS releases it if the process dies.
    lock: Mutex<Option<File>>,
    /// Bumped after every endpoint write, for [`crate::store::queue::DeliveryQueue::endpoints_version`].
    endpoints_version: AtomicU64,
    /// Instance reads of the last second (see [`instance_cache`]).
    instances: instance_cache::InstanceCache,
    /// The embedded store's directory, whose free space the health check reads.
    sqlite_dir: Option<std::path::PathBuf>,
    /// This process, as the owner of its leases on a shared store.
    node: finhook_core::ids::NodeId,
}

/// The free space the embedded store's health check asks for. A tiny probe write can
/// succeed on a full disk (it reuses WAL frames a failed write had taken), so "a committed
/// probe" alone would call a full disk healthy while every callback is refused.
const MIN_FREE_BYTES: u64 = 1024 * 1024;

impl SqlStore {
    /// An instance read through [`instance_cache`]; only instances found are kept.
    async fn cached_instance(&self, by: instance_cache::By, query: Sql) -> StoreResult<Option<Instance>> {
        if let Some(instance) = self.instances.get(&by) {
            return Ok(Some(instance));
        }
        let version = self.instances.version();
        let found = self.pools.read_optional(query).await?.as_ref().map(instance_from).transpose()?;
        if let Some(instance) = &found {
            self.instances.put(by, instance, version);
        }
        Ok(found)
    }

    /// Tells the worker that its copies of endpoints may be stale. Called after the write
    /// whatever its outcome: a failed write may still have been committed.
    fn endpoints_changed(&self) {
        self.endpoints_version.fetch_add(1, Ordering::AcqRel);
    }

    /// The directory of the payload log, if this store keeps one.
    fn payload_dir(&self) -> Option<&std::path::Path> {
        self.writes.payload_log().map(|log| log.dir())
    }

    /// The disk space of the payload log (0 without one).
    async fn payload_log_bytes(&self) -> StoreResult<u64> {
        let Some(log) = self.writes.payload_log().cloned() else { return Ok(0) };
        payload_log::blocking(move || log.disk_bytes()).await?.map_err(StoreError::PayloadLog)
    }

    /// Removes the payload log's segments no message names any more.
    async fn drop_unneeded_payloads(&self) -> StoreResult<()> {
        let Some(log) = self.writes.payload_log().cloned() else { return Ok(()) };
        // In this order: a batch not committed when the oldest segment named is read
        // appends to the segment active now or a later one.
        let active = log.active_segment();
        let oldest = self.pools.read_optional(sql("SELECT MIN(payload_segment) AS s FROM messages")).await?;
        let oldest = oldest.map(|row| row.opt_int("s")).transpose()?.flatten();
        let oldest = oldest.map(|s| u64::try_from(s).unwrap_or(0));
        let removed =
            payload_log::blocking(move || log.drop_before(active, oldest)).await?.map_err(StoreError::PayloadLog)?;
        if removed > 0 {
            tracing::info!(segments = removed, "removed payload log segments no message names any more");
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.pools.backend()
    }
}

/// Messages one retention transaction deletes at most. The sweep deletes in transactions
/// this small so that ingests and attempt records, which share the one writer, wait for it
/// a moment, not for the whole sweep, however much has passed retention.
const PURGE_BATCH: u64 = 500;

/// Up to `$2` finished messages (no delivery pending) created before `$1`, oldest first:
/// read through `messages_by_created_at`, so finding them costs the rows found, not a walk
/// of every message and its payload.
fn finished_before_sql(cutoff: DateTime<Utc>) -> Sql {
    sql("SELECT m.id FROM messages m
         WHERE m.created_at < $1
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status = 'pending')
         ORDER BY m.created_at
         LIMIT $2")
    .bind(millis(cutoff))
    .bind(i64::try_from(PURGE_BATCH).unwrap_or(i64::MAX))
}

impl SqlStore {
    /// One retention transaction: deletes up to [`PURGE_BATCH`] finished messages past the
    /// cutoff with their deliveries and attempts; returns how many messages went.
    async fn purge_batch(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.pools.begin().await?;
        let mut conn = tx.conn();
        let ids = conn.fetch_all(finished_before_sql(cutoff)).await?;
        let ids = ids.iter().map(|row| row.text("id")).collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(0);
        }
        // A delivery made pending again since the read (a redelivery, on a shared store) is
        // not deleted; its message's delete then breaks the foreign key and the batch rolls
        // back whole, to be swept again later.
        let list = placeholders(1, ids.len());
        let finished = format!("SELECT id FROM deliveries WHERE message_id IN ({list}) AND status <> 'pending'");
        conn.execute(sql(format!("DELETE FROM attempts WHERE delivery_id IN ({finished})")).bind_each(ids.iter()))
            .await?;
        conn.execute(
            sql(format!("DELETE FROM deliveries WHERE message_id IN ({list}) AND status <> 'pending'"))
                .bind_each(ids.iter()),
        )
        .await?;
        conn.execute(
            sql(format!(
                "UPDATE instances SET stored_bytes = stored_bytes
                   - (SELECT COALESCE(SUM(COALESCE(m.payload_length, length(m.payload))), 0) FROM messages m
                      WHERE m.instance_id = instances.id AND m.id IN ({list}))
                 WHERE id IN (SELECT instance_id FROM messages WHERE id IN ({list}))"
            ))
            .bind_each(ids.iter()),
        )
        .await?;
        let logged = conn
            .fetch_all(
                sql(format!(
                    "SELECT {BODY_COLUMNS} FROM messages WHERE id IN ({list}) AND payload_segment IS NOT NULL"
                ))
                .bind_each(ids.iter()),
            )
            .await?
            .iter()
            .map(payload_log::StoredBody::of)
            .collect::<StoreResult<Vec<_>>>()?;
        let purged =
            conn.execute(sql(format!("DELETE FROM messages WHERE id IN ({list})")).bind_each(ids.iter())).await?;
        tx.commit().await?;
        // Their bodies go too, now, not when the last message of their segment does: they
        // are personal data past retention.
        if let Some(log) = self.writes.payload_log().cloned() {
            let ranges = logged.iter().filter_map(payload_log::StoredBody::place).collect::<Vec<_>>();
            payload_log::blocking(move || log.erase(&ranges)).await?.map_err(StoreError::PayloadLog)?;
        }
        Ok(purged)
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn close(&self) {
        self.writes.close().await;
        self.pools.close().await;
        // Only now may another process open the file.
        if let Ok(mut lock) = self.lock.lock() {
            lock.take();
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        // A committed write, not a read: a full disk or a read-only server still answers
        // reads. It joins the group commit, so "healthy" means "a 202 would be durable now".
        self.writes.probe(Utc::now().timestamp_millis()).await?;
        if let Some(dir) = &self.sqlite_dir {
            // If the file system cannot say, the committed probe stands alone.
            let free = rustix::fs::statvfs(dir.as_path()).map(|stat| stat.f_bavail.saturating_mul(stat.f_frsize));
            match free {
                Ok(free_bytes) if free_bytes < MIN_FREE_BYTES => {
                    return Err(StoreError::LowOnSpace { free_bytes, needed_bytes: MIN_FREE_BYTES });
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "could not read the database's free space"),
            }
        }
        Ok(())
    }

    async fn purge_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        let mut purged = 0;
        loop {
            let batch = self.purge_batch(cutoff).await;
            self.instances.changed(); // what each instance stores went down
            let batch = batch?;
            purged += batch;
            if batch < PURGE_BATCH {
                break;
            }
        }
        self.drop_unneeded_payloads().await?;
        Ok(purged)
    }

    async fn stats(&self, now: DateTime<Utc>) -> StoreResult<StoreStats> {
        let mut reader = self.pools.reader().await?;
        let mut conn = reader.conn();
        let messages = conn.fetch_one(sql("SELECT count(*) AS n FROM messages")).await?.int("n")?;
        let mut deliveries_by_status = Vec::new();
        for status in
            [DeliveryStatus::Pending, DeliveryStatus::Delivered, DeliveryStatus::Failed, DeliveryStatus::Cancelled]
        {
            let row = conn
                .fetch_one(
                    sql("SELECT count(*) AS n FROM deliveries WHERE status = $1 AND NOT superseded")
                        .bind(status.as_str()),
                )
                .await?;
            deliveries_by_status.push((status, row.int("n")?));
        }
        let oldest = conn.fetch_one(oldest_pending_sql()).await?.opt_int("due")?.map(time_of).transpose()?;
        // Only a delivery whose time has come is waiting.
        let oldest_due_at = oldest.filter(|due| *due <= now);
        drop(reader);
        let (ledger_heads, ledger_queued) = (self.ledger_heads().await?, self.ledger_queued().await?);
        let (mut certificate_expiries, mut client_certificate_expiries) = (Vec::new(), Vec::new());
        let expiries = self
            .pools
            .read_all(sql("SELECT i.name, e.id, e.certificate_expires_at, e.client_cert_expires_at
                 FROM endpoints e JOIN instances i ON i.id = e.instance_id
                 WHERE e.enabled AND (e.certificate_expires_at IS NOT NULL OR e.client_cert_expires_at IS NOT NULL)
                 ORDER BY i.name, e.id"))
            .await?;
        for row in &expiries {
            let (instance, id) = (row.text("name")?, EndpointId::parse(&row.text("id")?).map_err(corrupt)?);
            if let Some(at) = row.opt_int("certificate_expires_at")? {
                certificate_expiries.push((instance.clone(), id.clone(), time_of(at)?));
            }
            if let Some(at) = row.opt_int("client_cert_expires_at")? {
                client_certificate_expiries.push((instance, id, time_of(at)?));
            }
        }
        let failing = self
            .pools
            .read_all(sql("SELECT i.name, f.endpoint_id, f.failures_in_row
                 FROM endpoint_failures f JOIN instances i ON i.id = f.instance_id
                 ORDER BY i.name, f.endpoint_id"))
            .await?;
        let failing_endpoints = failing
            .iter()
            .map(|row| {
                let id = EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?;
                Ok((row.text("name")?, id, row.int("failures_in_row")?.max(0).unsigned_abs()))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let backlogs = self
            .pools
            .read_all(sql("SELECT i.name, d.endpoint_id, count(*) AS n, min(d.next_attempt_at) AS due
                 FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id JOIN instances i ON i.id = e.instance_id
                 WHERE d.status = 'pending'
                 GROUP BY i.name, d.endpoint_id
                 ORDER BY i.name, d.endpoint_id"))
            .await?;
        let endpoint_backlogs = backlogs
            .iter()
            .map(|row| {
                let id = EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?;
                let due = row.opt_int("due")?.map(time_of).transpose()?.filter(|due| *due <= now);
                Ok((row.text("name")?, id, row.int("n")?.max(0).unsigned_abs(), due))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(StoreStats {
            endpoint_backlogs,
            failing_endpoints,
            events_queued: self.events_queued().await?,
            messages,
            deliveries_by_status,
            oldest_due_at,
            ledger_heads,
            ledger_queued,
            certificate_expiries,
            client_certificate_expiries,
            group_commit: self.writes.totals(),
            payload_log_bytes: self.payload_log_bytes().await?,
        })
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row = self.pools.read_optional(sql("SELECT value FROM settings WHERE key = $1").bind(key)).await?;
        Ok(row.map(|row| row.text("value")).transpose()?)
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        self.pools
            .write(
                sql("INSERT INTO settings (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value")
                .bind(key)
                .bind(value),
            )
            .await?;
        Ok(())
    }

    async fn create_instance(&self, new: NewInstance) -> StoreResult<Instance> {
        // A name or key that was unknown a moment ago must not stay unknown.
        self.instances.changed();
        let mut tx = self.pools.begin().await?;
        let result = tx
            .conn()
            .fetch_one(
                sql(format!(
                    "INSERT INTO instances (name, customer_id, mode, api_key_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {INSTANCE_COLUMNS}"
                ))
                .bind(new.name)
                .bind(new.customer_id)
                .bind(new.mode.as_str())
                .bind(new.api_key_hash.as_str())
                .bind(millis(new.now)),
            )
            .await;
        match result {
            Ok(row) => {
                tx.commit().await?;
                instance_from(&row)
            }
            Err(error) if is_unique_violation(&error) => Err(StoreError::Conflict("an instance with this name")),
            Err(error) => Err(error.into()),
        }
    }

    async fn instance_by_name(&self, name: &str) -> StoreResult<Option<Instance>> {
        let query = sql(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE name = $1")).bind(name);
        self.cached_instance(instance_cache::By::Name(name.to_string()), query).await
    }

    async fn instance_by_key_hash(&self, hash: &KeyHash) -> StoreResult<Option<Instance>> {
        let query =
            sql(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE api_key_hash = $1")).bind(hash.as_str());
        self.cached_instance(instance_cache::By::KeyHash(hash.as_str().to_string()), query).await
    }

    async fn set_instance_key_hash(&self, instance: InstanceId, hash: &KeyHash) -> StoreResult<()> {
        let written = self
            .pools
            .write(sql("UPDATE instances SET api_key_hash = $1 WHERE id = $2").bind(hash.as_str()).bind(instance.0))
            .await;
        self.instances.changed();
        written?;
        Ok(())
    }

    async fn instance_key_matches(&self, instance: InstanceId, hash: &KeyHash) -> StoreResult<bool> {
        let query = sql("SELECT 1 AS one FROM instances WHERE id = $1 AND api_key_hash = $2")
            .bind(instance.0)
            .bind(hash.as_str());
        Ok(self.pools.read_optional(query).await?.is_some())
    }

    async fn list_instances(&self) -> StoreResult<Vec<Instance>> {
        let rows = self.pools.read_all(sql(format!("SELECT {INSTANCE_COLUMNS} FROM instances ORDER BY name"))).await?;
        rows.iter().map(instance_from).collect()
    }

    async fn create_endpoint(&self, instance: InstanceId, new: NewEndpoint) -> StoreResult<Endpoint> {
        let created = endpoints::create(self, instance, new).await;
        self.endpoints_changed();
        created
    }

    async fn endpoint(&self, instance: InstanceId, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        let query = sql(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = $1 AND id = $2"))
            .bind(instance.0)
            .bind(id.as_str());
        self.pools.read_optional(query).await?.as_ref().map(endpoint_from).transpose()
    }

    async fn watched_endpoints(&self) -> StoreResult<Vec<Endpoint>> {
        let query =
            sql(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE enabled AND url LIKE 'https:%' ORDER BY id"));
        self.pools.read_all(query).await?.iter().map(endpoint_from).collect()
    }

    async fn set_endpoint_certificate(&self, id: &EndpointId, report: Option<&CertificateReport>) -> StoreResult<()> {
        let json = report.map(serde_json::to_string).transpose().map_err(|e| corrupt(e.to_string()))?;
        let expires_at = report.and_then(|report| report.expires_at).map(millis);
        self.pools
            .write(
                sql("UPDATE endpoints SET certificate = $1, certificate_expires_at = $2 WHERE id = $3")
                    .bind(json)
                    .bind(expires_at)
                    .bind(id.as_str()),
            )
            .await?;
        Ok(())
    }

    async fn list_endpoints(&self, instance: InstanceId) -> StoreResult<Vec<Endpoint>> {
        let query = sql(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = $1 ORDER BY id"))
            .bind(instance.0);
        self.pools.read_all(query).await?.iter().map(endpoint_from).collect()
    }

    async fn update_endpoint(
        &self,
        instance: InstanceId,
        id: &EndpointId,
        patch: EndpointPatch,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Endpoint>> {
        let updated = endpoints::update(self, instance, id, patch, now).await;
        self.endpoints_changed();
        updated
    }

    async fn delete_endpoint(&self, instance: InstanceId, id: &EndpointId, now: DateTime<Utc>) -> StoreResult<bool> {
        let deleted = endpoints::delete(self, instance, id, now).await;
        self.endpoints_changed();
        deleted
    }

    async fn rotate_secret(
        &self,
        instance: InstanceId,
        id: &EndpointId,
        secret: &EndpointSecret,
        now: DateTime<Utc>,
        old_expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let rotated = endpoints::rotate_secret(self, instance, id, secret, now, old_expires_at).await;
        self.endpoints_changed();
        rotated
    }

    async fn signing_keys(&self, instance: InstanceId, now: DateTime<Utc>) -> StoreResult<Vec<InstanceKey>> {
        signing_keys::valid(self, instance, now).await
    }

    async fn add_signing_key_if_none(
        &self,
        instance: InstanceId,
        key: &SigningKey,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let added = signing_keys::add_if_none(self, instance, key, now).await;
        self.endpoints_changed();
        added
    }

    async fn rotate_signing_key(
        &self,
        instance: InstanceId,
        key: &SigningKey,
        now: DateTime<Utc>,
        old_expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let rotated = signing_keys::rotate(self, instance, key, now, old_expires_at).await;
        self.endpoints_changed();
        rotated
    }

    async fn ingest(&self, message: NewMessage) -> StoreResult<IngestOutcome> {
        let (instance, bytes) = (message.instance_id, message.payload.len());
        let outcome = self.writes.ingest(message).await?;
        if matches!(outcome, IngestOutcome::Created { .. }) {
            // This node's copies count what it just stored, so its quota checks are exact.
            self.instances.stored(instance, bytes);
        }
        Ok(outcome)
    }

    async fn list_messages(&self, instance: InstanceId, filter: &MessageFilter) -> StoreResult<Vec<MessageSummary>> {
        messages::list(self, instance, filter).await
    }

    async fn message(&self, instance: InstanceId, id: &MessageId) -> StoreResult<Option<MessageDetail>> {
        messages::detail(self, instance, id).await
    }

    async fn login_messages(&self, instance: InstanceId, login_id: &str) -> StoreResult<Vec<MessageDetail>> {
        messages::of_login(self, instance, login_id).await
    }

    async fn redeliver(
        &self,
        instance: InstanceId,
        id: &MessageId,
        endpoint: Option<&EndpointId>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<DeliveryId>>> {
        messages::redeliver(self, instance, id, endpoint, now).await
    }
}

/// The tiny write behind [`Store::ping`]: the time of the last probe, in `settings`.
fn probe_sql(now_ms: i64) -> db::Sql {
    sql("INSERT INTO settings (key, value) VALUES ('store.write_probe', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    .bind(now_ms.to_string())
}

/// The earliest next attempt of any pending delivery of an enabled endpoint, as `due`.
///
/// Asked per endpoint, so that each answer is the first entry of that endpoint's range
/// in the partial index of pending deliveries: the cost is the number of endpoints, not
/// the backlog. (A join over every pending delivery, as before, made each `/metrics`
/// scrape read the whole backlog and a table row per delivery.)
fn oldest_pending_sql() -> db::Sql {
    sql("SELECT min((SELECT min(d.next_attempt_at) FROM deliveries d
                     WHERE d.endpoint_id = e.id AND d.status = 'pending')) AS due
         FROM endpoints e WHERE e.enabled")
}
