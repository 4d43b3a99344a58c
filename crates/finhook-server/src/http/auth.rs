//! Bearer-key authentication: the admin key may do everything, an instance key only what
//! concerns its own instance.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use finhook_core::secret::KeyHash;

use super::ApiError;
use crate::app::AppState;
use crate::store::{Endpoint, Instance, InstanceId};
use finhook_core::ids::EndpointId;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    Admin,
    Instance(Box<Instance>),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hash = KeyHash::of(key);
        if state.admin_key.matches(state.store.as_ref(), &hash).await? {
            return Ok(Caller::Admin);
        }
        match state.store.instance_by_key_hash(&hash).await? {
            Some(instance) => Ok(Caller::Instance(Box::new(instance))),
            None => Err(ApiError::Unauthorized),
        }
    }
}

/// An endpoint of `instance`, by the id a request named: 404 for a malformed id, an unknown
/// one, or another instance's.
pub async fn instance_endpoint(state: &AppState, instance: InstanceId, raw: &str) -> Result<Endpoint, ApiError> {
    let id = EndpointId::parse(raw.trim()).map_err(|_| ApiError::NotFound("endpoint"))?;
    state.store.endpoint(instance, &id).await?.ok_or(ApiError::NotFound("endpoint"))
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Admin => Ok(()),
            Caller::Instance(_) => Err(ApiError::Forbidden),
        }
    }

    /// The named instance, if this caller may act on it. Another instance's name answers
    /// 404, exactly as a name that does not exist, so keys cannot probe for tenants.
    pub async fn instance(&self, state: &AppState, name: &str) -> Result<Instance, ApiError> {
        match self {
            Caller::Instance(own) if own.name == name => Ok((**own).clone()),
            Caller::Instance(_) => Err(ApiError::NotFound("instance")),
            Caller::Admin => state.store.instance_by_name(name).await?.ok_or(ApiError::NotFound("instance")),
        }
    }
}
