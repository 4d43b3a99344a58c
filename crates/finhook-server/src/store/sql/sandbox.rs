//! The sandbox's tables, written once for both databases.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::SqlStore;
use crate::store::db::sql;
use crate::store::rows::{instance_from, login_from, millis, request_from, INSTANCE_COLUMNS};
use crate::store::sandbox::{SandboxLogin, SandboxRequest, SandboxStore};
use crate::store::{Instance, InstanceId, StoreError, StoreResult};

#[async_trait]
impl SandboxStore for SqlStore {
    async fn instance_by_customer_id(&self, customer_id: &str) -> StoreResult<Option<Instance>> {
        let query = sql(format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE customer_id = $1")).bind(customer_id);
        self.pools.read_optional(query).await?.as_ref().map(instance_from).transpose()
    }

    async fn set_sandbox_settings(&self, instance: InstanceId, strict_auth: bool, delay_ms: u64) -> StoreResult<()> {
        let written = self
            .pools
            .write(
                sql("UPDATE instances SET sandbox_strict_auth = $1, sandbox_delay_ms = $2 WHERE id = $3")
                    .bind(strict_auth)
                    .bind(i64::try_from(delay_ms).unwrap_or(i64::MAX))
                    .bind(instance.0),
            )
            .await;
        self.instances.changed();
        written?;
        Ok(())
    }

    async fn put_sandbox_token(&self, instance: InstanceId, token: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.pools
            .write(
                sql("INSERT INTO sandbox_tokens (token, instance_id, expires_at) VALUES ($1, $2, $3)")
                    .bind(token)
                    .bind(instance.0)
                    .bind(millis(expires_at)),
            )
            .await?;
        Ok(())
    }

    async fn use_sandbox_token(&self, instance: InstanceId, token: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let used = self
            .pools
            .write(
                sql("UPDATE sandbox_tokens SET used = TRUE
                     WHERE token = $1 AND instance_id = $2 AND NOT used AND expires_at > $3")
                .bind(token)
                .bind(instance.0)
                .bind(millis(now)),
            )
            .await?;
        Ok(used == 1)
    }

    async fn put_sandbox_login(&self, login: &SandboxLogin) -> StoreResult<()> {
        self.pools
            .write(
                sql("INSERT INTO sandbox_logins (login_id, instance_id, institution, username, tag, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (login_id) DO UPDATE SET tag = excluded.tag")
                .bind(&login.login_id)
                .bind(login.instance_id.0)
                .bind(&login.institution)
                .bind(&login.username)
                .bind(&login.tag)
                .bind(millis(login.created_at)),
            )
            .await?;
        Ok(())
    }

    async fn sandbox_login(&self, instance: InstanceId, login_id: &str) -> StoreResult<Option<SandboxLogin>> {
        let query = sql("SELECT * FROM sandbox_logins WHERE instance_id = $1 AND login_id = $2")
            .bind(instance.0)
            .bind(login_id);
        self.pools.read_optional(query).await?.as_ref().map(login_from).transpose()
    }

    async fn put_sandbox_request(&self, request: &SandboxRequest) -> StoreResult<()> {
        self.pools
            .write(
                sql("INSERT INTO sandbox_requests (request_id, instance_id, login_id, state, created_at, detail, ready_at,
                                                   callbacks_pending)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (request_id) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                         ready_at = excluded.ready_at, callbacks_pending = excluded.callbacks_pending")
                .bind(&request.request_id)
                .bind(request.instance_id.0)
                .bind(&request.login_id)
                .bind(request.state.as_str())
                .bind(millis(request.created_at))
                .bind(&request.detail)
                .bind(request.ready_at.map(millis))
                .bind(request.callbacks_pending),
            )
            .await?;
        Ok(())
    }

    async fn sandbox_request(&self, instance: InstanceId, request_id: &str) -> StoreResult<Option<SandboxRequest>> {
        let query = sql("SELECT * FROM sandbox_requests WHERE instance_id = $1 AND request_id = $2")
            .bind(instance.0)
            .bind(request_id);
        self.pools.read_optional(query).await?.as_ref().map(request_from).transpose()
    }

    async fn pending_sandbox_callbacks(&self) -> StoreResult<Vec<(SandboxLogin, SandboxRequest)>> {
        let rows = self
            .pools
            .read_all(sql("SELECT * FROM sandbox_requests WHERE callbacks_pending = TRUE ORDER BY created_at"))
            .await?;
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            let request = request_from(row)?;
            let login = self
                .sandbox_login(request.instance_id, &request.login_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("sandbox request {} has no login", request.request_id)))?;
            pending.push((login, request));
        }
        Ok(pending)
    }
}
