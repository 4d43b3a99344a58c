//! `/v1/admin-key/rotate`: a new admin key, shown once.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::http::admin_key::RotateError;
use crate::http::audit::{self, Origin, Via};
use crate::http::{ApiError, Caller, Problem};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewAdminKey {
    /// Shown only this once; only its hash is stored.
    admin_key: String,
}

#[utoipa::path(operation_id = "rotateAdminKey", summary = "Make a new admin key (shown once)", post, path = "/v1/admin-key/rotate", tag = "instances",
    responses((status = 200, description = "the new admin key; the old one stops working (on other nodes within a second), and its dashboard sessions end", body = NewAdminKey),
        (status = 401, description = "no or bad key", body = Problem), (status = 403, description = "not the admin key", body = Problem),
        (status = 409, description = "the key is given by FINHOOK_ADMIN_KEY: change it there", body = Problem)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
) -> Result<Json<NewAdminKey>, ApiError> {
    caller.require_admin()?;
    let key = state.admin_key.rotate(state.store.as_ref()).await.map_err(|error| match error {
        RotateError::FromSettings => ApiError::Conflict(error.to_string()),
        RotateError::Store(error) => error.into(),
    })?;
    state.sessions.close_admin();
    tracing::warn!("the admin key was rotated; the old one no longer works");
    audit::record(&state, audit::actor(&caller, Via::Api), &origin, "admin_key.rotate", None, None).await;
    Ok(Json(NewAdminKey { admin_key: key.expose().to_string() }))
}
