//! The audit log's table, written once for both databases (see [`crate::store::audit`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlStore;
use crate::store::audit::{AuditEntry, AuditStore, NewAuditEntry};
use crate::store::db::sql;
use crate::store::rows::{millis, time_of, Cols};
use crate::store::{InstanceId, StoreResult};

#[async_trait]
impl AuditStore for SqlStore {
    async fn record_audit(&self, entry: NewAuditEntry) -> StoreResult<()> {
        self.pools
            .write(
                sql("INSERT INTO audit_log (at, actor, instance_id, action, target, remote_addr, request_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(millis(entry.at))
                .bind(entry.actor)
                .bind(entry.instance_id.map(|instance| instance.0))
                .bind(entry.action)
                .bind(entry.target)
                .bind(entry.remote_addr)
                .bind(entry.request_id),
            )
            .await?;
        Ok(())
    }

    async fn audit_entries(
        &self,
        instance: Option<InstanceId>,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows = self
            .pools
            .read_all(
                sql("SELECT a.id, a.at, a.actor, i.name AS instance, a.action, a.target, a.remote_addr, a.request_id
                     FROM audit_log a LEFT JOIN instances i ON i.id = a.instance_id
                     WHERE ($1 IS NULL OR a.instance_id = $1) AND ($2 IS NULL OR a.id < $2)
                     ORDER BY a.id DESC LIMIT $3")
                .bind(instance.map(|instance| instance.0))
                .bind(before)
                .bind(i64::from(limit)),
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.int("id")?,
                    at: time_of(row.int("at")?)?,
                    actor: row.text("actor")?,
                    instance: row.opt_text("instance")?,
                    action: row.text("action")?,
                    target: row.opt_text("target")?,
                    remote_addr: row.opt_text("remote_addr")?,
                    request_id: row.opt_text("request_id")?,
                })
            })
            .collect()
    }

    async fn purge_audit_before(&self, cutoff: DateTime<Utc>) -> StoreResult<u64> {
        Ok(self.pools.write(sql("DELETE FROM audit_log WHERE at < $1").bind(millis(cutoff))).await?)
    }
}
