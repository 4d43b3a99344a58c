//! `/v1/instances/{name}/recover`: bulk recovery, re-sending every failed delivery of a time
//! range (of one endpoint, or of all), as a job whose progress can be followed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use finhook_core::ids::{EndpointId, RecoveryId};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::http::audit::{self, Origin, Via};
use crate::http::{instance_endpoint, ApiError, ApiJson, Caller, Problem};
use crate::store::recovery::{Recovery, RecoveryStatus};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// Deliveries that failed at or after this time (RFC 3339).
    since: String,
    /// ...and at or before this one (RFC 3339); now when absent.
    until: Option<String>,
    /// Only this endpoint's deliveries.
    endpoint_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryView {
    #[schema(value_type = String, example = "rcv_01JD0000000000000000000000")]
    id: RecoveryId,
    status: RecoveryStatus,
    /// Failed deliveries in the range when the job began.
    total: u64,
    /// How many were re-sent so far (each a new delivery, due at once).
    resent: u64,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    #[schema(value_type = Option<String>)]
    endpoint_id: Option<EndpointId>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<Recovery> for RecoveryView {
    fn from(r: Recovery) -> Self {
        Self {
            id: r.id,
            status: r.status,
            total: r.total,
            resent: r.resent,
            since: r.since,
            until: r.until,
            endpoint_id: r.endpoint_id,
            error: r.error,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

fn time(path: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::validation(path, "must be an RFC 3339 time, e.g. 2026-11-29T14:00:00Z"))
}

#[utoipa::path(operation_id = "startRecovery", summary = "Re-send every failed delivery of a time range, as a job", post, path = "/v1/instances/{name}/recover", tag = "messages", params(("name" = String, Path, description = "the instance name")), request_body = RecoverRequest,
    responses((status = 202, description = "the job, started", body = RecoveryView), (status = 401, description = "no or bad key", body = Problem),
        (status = 404, description = "unknown instance or endpoint", body = Problem), (status = 422, description = "bad times; `errors` names the paths", body = Problem)))]
pub async fn start(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<RecoverRequest>,
) -> Result<(StatusCode, Json<RecoveryView>), ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let now = state.clock.now();
    let since = time("$.since", &request.since)?;
    let until = request.until.as_deref().map(|until| time("$.until", until)).transpose()?.unwrap_or(now);
    if until <= since {
        return Err(ApiError::validation("$.until", "must be after since"));
    }
    let endpoint = match &request.endpoint_id {
        Some(id) => Some(instance_endpoint(&state, instance.id, id).await?.id),
        None => None,
    };
    let recovery = state.recoveries.start(instance.id, endpoint.as_ref(), since, until).await?;
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "recovery.start", Some(instance.id), Some(recovery.id.to_string())).await;
    Ok((StatusCode::ACCEPTED, Json(recovery.into())))
}

#[utoipa::path(operation_id = "getRecovery", summary = "Show a recovery job's progress", get, path = "/v1/instances/{name}/recover/{id}", tag = "messages", params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the job id (rcv_...)")),
    responses((status = 200, body = RecoveryView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<RecoveryView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let id = RecoveryId::parse(&id).map_err(|_| ApiError::NotFound("recovery"))?;
    let recovery = state.store.recovery(instance.id, &id).await?.ok_or(ApiError::NotFound("recovery"))?;
    Ok(Json(recovery.into()))
}
