//! Instances' Ed25519 signing keys: the secret half sealed at rest (context: the key's
//! `kid`), the public half in the clear for the JWK set.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use finhook_core::signing::asymmetric::{PublicKey, SigningKey};

use super::SqlStore;
use crate::store::db::{sql, Conn, Row};
use crate::store::rows::*;
use crate::store::signing::{InstanceKey, OpenedKeys};
use crate::store::{InstanceId, StoreResult};

/// The rows of the instance's keys still signing at `now`, newest first.
async fn valid_rows(store: &SqlStore, instance: InstanceId, now: DateTime<Utc>) -> StoreResult<Vec<Row>> {
    store
        .pools
        .read_all(
            sql("SELECT kid, public_key, secret, created_at, expires_at FROM instance_signing_keys
                 WHERE instance_id = $1 AND (expires_at IS NULL OR expires_at > $2)
                 ORDER BY expires_at IS NULL DESC, created_at DESC")
            .bind(instance.0)
            .bind(millis(now)),
        )
        .await
        .map_err(Into::into)
}

/// The instance's keys still signing at `now`, newest first.
pub(super) async fn valid(store: &SqlStore, instance: InstanceId, now: DateTime<Utc>) -> StoreResult<Vec<InstanceKey>> {
    let rows = valid_rows(store, instance, now).await?;
    rows.iter()
        .map(|row| {
            Ok(InstanceKey {
                kid: row.text("kid")?,
                public_key: PublicKey::parse(&row.text("public_key")?).map_err(corrupt)?,
                created_at: time_of(row.int("created_at")?)?,
                expires_at: row.opt_int("expires_at")?.map(time_of).transpose()?,
            })
        })
        .collect()
}

/// The instance's keys still signing at `now`, opened, newest first.
pub(super) async fn opened(store: &SqlStore, instance: InstanceId, now: DateTime<Utc>) -> StoreResult<OpenedKeys> {
    let rows = valid_rows(store, instance, now).await?;
    rows.iter()
        .map(|row| {
            let text = store.sealing.open(&row.text("secret")?, &row.text("kid")?)?;
            let key = SigningKey::parse(&text).map_err(corrupt)?;
            Ok((Arc::new(key), row.opt_int("expires_at")?.map(time_of).transpose()?))
        })
        .collect()
}

/// Adds `key` unless the instance already has a key without an end; whether it was added.
pub(super) async fn add_if_none(
    store: &SqlStore,
    instance: InstanceId,
    key: &SigningKey,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut tx = store.pools.begin().await?;
    let mut conn = tx.conn();
    let current = conn
        .fetch_optional(
            sql("SELECT kid FROM instance_signing_keys WHERE instance_id = $1 AND expires_at IS NULL").bind(instance.0),
        )
        .await?;
    if current.is_some() {
        return Ok(false);
    }
    insert(store, &mut conn, instance, key, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Makes `key` the signing key; the others stop signing at `old_expires_at` at the latest
/// (those already expired are dropped).
pub(super) async fn rotate(
    store: &SqlStore,
    instance: InstanceId,
    key: &SigningKey,
    now: DateTime<Utc>,
    old_expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = store.pools.begin().await?;
    let mut conn = tx.conn();
    conn.execute(
        sql("DELETE FROM instance_signing_keys WHERE instance_id = $1 AND expires_at <= $2")
            .bind(instance.0)
            .bind(millis(now)),
    )
    .await?;
    conn.execute(
        sql("UPDATE instance_signing_keys
             SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1 ELSE expires_at END
             WHERE instance_id = $2")
        .bind(millis(old_expires_at))
        .bind(instance.0),
    )
    .await?;
    insert(store, &mut conn, instance, key, now).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert(
    store: &SqlStore,
    conn: &mut Conn<'_>,
    instance: InstanceId,
    key: &SigningKey,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let public = key.public_key();
    let kid = public.kid();
    conn.execute(
        sql("INSERT INTO instance_signing_keys (kid, instance_id, public_key, secret, created_at)
             VALUES ($1, $2, $3, $4, $5)")
        .bind(kid.as_str())
        .bind(instance.0)
        .bind(public.to_text())
        .bind(store.sealing.seal(&key.expose_text(), &kid))
        .bind(millis(now)),
    )
    .await?;
    Ok(())
}
