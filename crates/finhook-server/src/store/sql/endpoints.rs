//! Endpoints and their signing secrets (sealed at rest), written once for both databases.

use chrono::{DateTime, Utc};
use finhook_core::ids::EndpointId;
use finhook_core::secret::EndpointSecret;

use super::SqlStore;
use crate::store::db::sql;
use crate::store::rows::*;
use crate::store::{ClientIdentity, Endpoint, EndpointPatch, InstanceId, NewEndpoint, StoreResult};

pub(super) async fn create(store: &SqlStore, instance: InstanceId, new: NewEndpoint) -> StoreResult<Endpoint> {
    let id = EndpointId::generate();
    let mut tx = store.pools.begin().await?;
    let mut conn = tx.conn();
    let (cert_pem, sealed_key, subject, expires_at) = identity_columns(store, &id, new.client_identity.as_ref());
    let row = conn
        .fetch_one(
            sql(format!(
                "INSERT INTO endpoints (id, instance_id, url, description, event_types, max_attempts, interval_seconds,
                                        backoff, success, enabled, signing, client_cert_pem, client_key,
                                        client_cert_subject, client_cert_expires_at, created_at, updated_at, ordering)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
                 RETURNING {ENDPOINT_COLUMNS}"
            ))
            .bind(id.as_str())
            .bind(instance.0)
            .bind(new.url)
            .bind(new.description)
            .bind(event_types_to_json(&new.event_types))
            .bind(i64::from(new.retry.max_attempts))
            .bind(i64::from(new.retry.interval_seconds))
            .bind(backoff_str(new.retry.backoff))
            .bind(new.success.as_str())
            .bind(new.enabled)
            .bind(new.signing.as_str())
            .bind(cert_pem)
            .bind(sealed_key)
            .bind(subject)
            .bind(expires_at)
            .bind(millis(new.now))
            .bind(millis(new.now))
            .bind(new.ordering.as_str()),
        )
        .await?;
    conn.execute(
        sql("INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(store.sealing.seal(new.secret.expose(), id.as_str()))
            .bind(millis(new.now)),
    )
    .await?;
    tx.commit().await?;
    endpoint_from(&row)
}

/// The sealing context of an endpoint's client key: bound to the endpoint, and apart from
/// its secrets'.
fn client_key_context(id: &EndpointId) -> String {
    format!("{id}/client-key")
}

/// The four columns of an endpoint's client certificate (all `NULL` without one): the
/// certificate, the key sealed, the subject and the expiry.
fn identity_columns(
    store: &SqlStore,
    id: &EndpointId,
    identity: Option<&ClientIdentity>,
) -> (Option<String>, Option<String>, Option<String>, Option<i64>) {
    match identity {
        Some(i) => (
            Some(i.cert_pem.clone()),
            Some(store.sealing.seal(i.expose_key_pem(), &client_key_context(id))),
            Some(i.subject.clone()),
            Some(millis(i.not_after)),
        ),
        None => (None, None, None, None),
    }
}

/// Sets (or with `None` removes) an endpoint's client certificate and sealed key.
fn set_identity(store: &SqlStore, id: &EndpointId, identity: Option<&ClientIdentity>) -> crate::store::db::Sql {
    let (cert_pem, sealed_key, subject, expires_at) = identity_columns(store, id, identity);
    sql("UPDATE endpoints SET client_cert_pem = $1, client_key = $2, client_cert_subject = $3,
                              client_cert_expires_at = $4
         WHERE id = $5")
    .bind(cert_pem)
    .bind(sealed_key)
    .bind(subject)
    .bind(expires_at)
    .bind(id.as_str())
}

/// An endpoint's client certificate with its key unsealed, for the worker.
pub(super) async fn identity(store: &SqlStore, id: &EndpointId) -> StoreResult<Option<ClientIdentity>> {
    let row = store
        .pools
        .read_optional(sql("SELECT client_cert_pem, client_key FROM endpoints WHERE id = $1").bind(id.as_str()))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let (Some(cert_pem), Some(sealed)) = (row.opt_text("client_cert_pem")?, row.opt_text("client_key")?) else {
        return Ok(None);
    };
    let key_pem = store.sealing.open(&sealed, &client_key_context(id))?;
    ClientIdentity::parse(&cert_pem, &key_pem).map(Some).map_err(corrupt)
}

pub(super) async fn update(
    store: &SqlStore,
    instance: InstanceId,
    id: &EndpointId,
    patch: EndpointPatch,
    now: DateTime<Utc>,
) -> StoreResult<Option<Endpoint>> {
    let mut tx = store.pools.begin().await?;
    let mut conn = tx.conn();
    let found = conn
        .fetch_optional(
            sql(format!("SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE instance_id = $1 AND id = $2"))
                .bind(instance.0)
                .bind(id.as_str()),
        )
        .await?;
    let Some(row) = found else { return Ok(None) };
    let mut endpoint = endpoint_from(&row)?;
    // A new URL, or enabling again, starts the endpoint's record of failures afresh.
    let fresh_start = patch.url.as_ref().is_some_and(|url| *url != endpoint.url)
        || (patch.enabled == Some(true) && !endpoint.enabled);
    endpoint.url = patch.url.unwrap_or(endpoint.url);
    endpoint.description = patch.description.unwrap_or(endpoint.description);
    endpoint.event_types = patch.event_types.unwrap_or(endpoint.event_types);
    endpoint.retry = patch.retry.unwrap_or(endpoint.retry);
    endpoint.success = patch.success.unwrap_or(endpoint.success);
    endpoint.enabled = patch.enabled.unwrap_or(endpoint.enabled);
    if endpoint.enabled {
        endpoint.auto_disabled_at = None;
    }
    endpoint.signing = patch.signing.unwrap_or(endpoint.signing);
    endpoint.ordering = patch.ordering.unwrap_or(endpoint.ordering);
    if let Some(identity) = &patch.client_identity {
        conn.execute(set_identity(store, id, identity.as_ref())).await?;
        endpoint.client_certificate = identity.as_ref().map(ClientIdentity::info);
    }
    endpoint.updated_at = now;
    conn.execute(
        sql("UPDATE endpoints SET url = $1, description = $2, event_types = $3, max_attempts = $4,
                    interval_seconds = $5, backoff = $6, success = $7, enabled = $8, signing = $9,
                    updated_at = $10, auto_disabled_at = $12, ordering = $13
             WHERE id = $11")
        .bind(&endpoint.url)
        .bind(&endpoint.description)
        .bind(event_types_to_json(&endpoint.event_types))
        .bind(i64::from(endpoint.retry.max_attempts))
        .bind(i64::from(endpoint.retry.interval_seconds))
        .bind(backoff_str(endpoint.retry.backoff))
        .bind(endpoint.success.as_str())
        .bind(endpoint.enabled)
        .bind(endpoint.signing.as_str())
        .bind(millis(now))
        .bind(id.as_str())
        .bind(endpoint.auto_disabled_at.map(millis))
        .bind(endpoint.ordering.as_str()),
    )
    .await?;
    if fresh_start {
        conn.execute(forget_failures(id)).await?;
    }
    tx.commit().await?;
    Ok(Some(endpoint))
}

pub(super) async fn delete(
    store: &SqlStore,
    instance: InstanceId,
    id: &EndpointId,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut tx = store.pools.begin().await?;
    let mut conn = tx.conn();
    let deleted = conn
        .execute(sql("DELETE FROM endpoints WHERE instance_id = $1 AND id = $2").bind(instance.0).bind(id.as_str()))
        .await?;
    if deleted == 0 {
        return Ok(false);
    }
    conn.execute(forget_failures(id)).await?;
    conn.execute(
        sql("UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $1
             WHERE endpoint_id = $2 AND status = 'pending'")
        .bind(millis(now))
        .bind(id.as_str()),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes the endpoint's run of failed attempts, if it has one.
fn forget_failures(id: &EndpointId) -> crate::store::db::Sql {
    sql("DELETE FROM endpoint_failures WHERE endpoint_id = $1").bind(id.as_str())
}

pub(super) async fn rotate_secret(
    store: &SqlStore,
    instance: InstanceId,
    id: &EndpointId,
    secret: &EndpointSecret,
    now: DateTime<Utc>,
    old_expires_at: DateTime<Utc>,
) -> StoreResult<bool> {
    let mut tx = store.pools.begin().await?;
    let mut conn = tx.conn();
    let exists = conn
        .fetch_optional(
            sql("SELECT 1 AS one FROM endpoints WHERE instance_id = $1 AND id = $2").bind(instance.0).bind(id.as_str()),
        )
        .await?
        .is_some();
    if !exists {
        return Ok(false);
    }
    // Secrets already expired are dropped; the others stop signing at `old_expires_at` at
    // the latest (`CASE` rather than `LEAST`/`min`, which only one of the databases has).
    conn.execute(
        sql("DELETE FROM endpoint_secrets WHERE endpoint_id = $1 AND expires_at <= $2")
            .bind(id.as_str())
            .bind(millis(now)),
    )
    .await?;
    conn.execute(
        sql("UPDATE endpoint_secrets
             SET expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1 ELSE expires_at END
             WHERE endpoint_id = $2")
        .bind(millis(old_expires_at))
        .bind(id.as_str()),
    )
    .await?;
    conn.execute(
        sql("INSERT INTO endpoint_secrets (endpoint_id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(store.sealing.seal(secret.expose(), id.as_str()))
            .bind(millis(now)),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
