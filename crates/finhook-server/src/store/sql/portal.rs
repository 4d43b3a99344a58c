//! Portal links' table, written once for both databases (see [`crate::store::portal`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use finhook_core::ids::PortalLinkId;
use finhook_core::secret::KeyHash;

use super::SqlStore;
use crate::store::db::{sql, Row};
use crate::store::portal::{NewPortalLink, PortalLink, PortalStore};
use crate::store::rows::{corrupt, millis, time_of, Cols};
use crate::store::{InstanceId, StoreResult};

const COLUMNS: &str = "id, instance_id, read_only, created_at, expires_at, revoked_at, created_by";

#[async_trait]
impl PortalStore for SqlStore {
    async fn create_portal_link(&self, link: NewPortalLink) -> StoreResult<PortalLink> {
        self.pools
            .write(
                sql("INSERT INTO portal_links (id, instance_id, token_hash, read_only, created_at, expires_at, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(link.id.as_str())
                .bind(link.instance_id.0)
                .bind(link.token_hash.as_str())
                .bind(link.read_only)
                .bind(millis(link.created_at))
                .bind(millis(link.expires_at))
                .bind(link.created_by.clone()),
            )
            .await?;
        Ok(PortalLink {
            id: link.id,
            instance_id: link.instance_id,
            read_only: link.read_only,
            created_at: link.created_at,
            expires_at: link.expires_at,
            revoked_at: None,
            created_by: link.created_by,
        })
    }

    async fn portal_links(&self, instance: InstanceId) -> StoreResult<Vec<PortalLink>> {
        let rows = self
            .pools
            .read_all(
                sql(format!("SELECT {COLUMNS} FROM portal_links WHERE instance_id = $1 ORDER BY id DESC"))
                    .bind(instance.0),
            )
            .await?;
        rows.iter().map(link_from).collect()
    }

    async fn portal_link_by_token(&self, hash: &KeyHash) -> StoreResult<Option<(PortalLink, String)>> {
        let row = self
            .pools
            .read_optional(
                sql("SELECT p.id, p.instance_id, p.read_only, p.created_at, p.expires_at, p.revoked_at, p.created_by,
                            i.name
                     FROM portal_links p JOIN instances i ON i.id = p.instance_id WHERE p.token_hash = $1")
                .bind(hash.as_str()),
            )
            .await?;
        row.as_ref().map(|row| Ok((link_from(row)?, row.text("name")?))).transpose()
    }

    async fn portal_link(&self, id: &PortalLinkId) -> StoreResult<Option<PortalLink>> {
        let row = self
            .pools
            .read_optional(sql(format!("SELECT {COLUMNS} FROM portal_links WHERE id = $1")).bind(id.as_str()))
            .await?;
        row.as_ref().map(link_from).transpose()
    }

    async fn revoke_portal_link(
        &self,
        instance: InstanceId,
        id: &PortalLinkId,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PortalLink>> {
        let changed = self
            .pools
            .write(
                sql("UPDATE portal_links SET revoked_at = CASE WHEN revoked_at IS NULL THEN $3 ELSE revoked_at END
                     WHERE id = $1 AND instance_id = $2")
                .bind(id.as_str())
                .bind(instance.0)
                .bind(millis(now)),
            )
            .await?;
        if changed == 0 {
            return Ok(None);
        }
        self.portal_link(id).await
    }
}

fn link_from(row: &Row) -> StoreResult<PortalLink> {
    Ok(PortalLink {
        id: PortalLinkId::parse(&row.text("id")?).map_err(corrupt)?,
        instance_id: InstanceId(row.int("instance_id")?),
        read_only: row.flag("read_only")?,
        created_at: time_of(row.int("created_at")?)?,
        expires_at: time_of(row.int("expires_at")?)?,
        revoked_at: row.opt_int("revoked_at")?.map(time_of).transpose()?,
        created_by: row.text("created_by")?,
    })
}
