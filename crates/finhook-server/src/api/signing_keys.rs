//! An instance's Ed25519 signing keys: the public JWK set receivers verify `v1a`
//! signatures with (`/.well-known/jwks.json`, no authentication: public keys), and their
//! rotation.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use finhook_core::signing::asymmetric::{Jwks, SigningKey};
use serde::Serialize;

use crate::app::AppState;
use crate::http::audit::{self, Origin, Via};
use crate::http::{ApiError, Caller, Problem};
use crate::store::InstanceKey;

/// How long a replaced signing key keeps signing (and stays in the JWK set) after a
/// rotation, as a replaced endpoint secret does.
const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// How long receivers may cache the JWK set. Shorter than any rotation's overlap, so a
/// receiver that honours it always knows the new key before the old one stops signing.
const JWKS_MAX_AGE_SECONDS: u32 = 300;

/// A new signing key for an instance; the store adds it only if the instance has none.
pub(crate) async fn ensure_key(state: &AppState, instance: crate::store::InstanceId) -> Result<(), ApiError> {
    let key = SigningKey::generate()
        .map_err(|source| ApiError::Internal { what: "make a signing key", source: source.into() })?;
    state.store.add_signing_key_if_none(instance, &key, state.clock.now()).await?;
    Ok(())
}

#[utoipa::path(operation_id = "getJwks", summary = "The instance's public signing keys as a JWK set (no auth)", get, path = "/v1/instances/{name}/.well-known/jwks.json", tag = "signing", security(()), params(("name" = String, Path, description = "the instance name")),
    responses((status = 200, description = "the public keys of the instance's `v1a` signatures (RFC 7517; `kid` is the RFC 7638 thumbprint); empty until an endpoint signs with ed25519", content_type = "application/jwk-set+json", body = Object), (status = 404, description = "no such instance", body = Problem)))]
pub async fn jwks(State(state): State<AppState>, Path(name): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let instance = state.store.instance_by_name(&name).await?.ok_or(ApiError::NotFound("instance"))?;
    let keys = state.store.signing_keys(instance.id, state.clock.now()).await?;
    let set = Jwks::of(&keys.iter().map(|key| key.public_key).collect::<Vec<_>>());
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json".to_string()),
            (header::CACHE_CONTROL, format!("public, max-age={JWKS_MAX_AGE_SECONDS}")),
        ],
        Json(set),
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SigningKeyView {
    /// The RFC 7638 thumbprint of the public key.
    kid: String,
    /// `whpk_` + base64 of the 32-byte Ed25519 public key.
    public_key: String,
    created_at: DateTime<Utc>,
    /// `null` for the key that signs until the next rotation.
    expires_at: Option<DateTime<Utc>>,
}

impl SigningKeyView {
    fn of(key: &InstanceKey) -> Self {
        Self {
            kid: key.kid.clone(),
            public_key: key.public_key.to_text(),
            created_at: key.created_at,
            expires_at: key.expires_at,
        }
    }
}

#[utoipa::path(operation_id = "rotateSigningKey", summary = "Make a new Ed25519 signing key (the old one signs for 24 h)", post, path = "/v1/instances/{name}/rotate-signing-key", tag = "signing", params(("name" = String, Path, description = "the instance name")),
    responses((status = 200, description = "the instance's signing keys after the rotation, newest first; the replaced one keeps signing for 24 h", body = Vec<SigningKeyView>), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path(name): Path<String>,
) -> Result<Json<Vec<SigningKeyView>>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let key = SigningKey::generate()
        .map_err(|source| ApiError::Internal { what: "make a signing key", source: source.into() })?;
    let now = state.clock.now();
    state.store.rotate_signing_key(instance.id, &key, now, now + ROTATION_OVERLAP).await?;
    tracing::info!(instance = %instance.name, kid = %key.public_key().kid(), "signing key rotated");
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "signing_key.rotate", Some(instance.id), Some(key.public_key().kid())).await;
    let keys = state.store.signing_keys(instance.id, now).await?;
    Ok(Json(keys.iter().map(SigningKeyView::of).collect()))
}
