//! `/v1/audit`: the audit log, newest first (the admin key: every instance's, or one's; an
//! instance key: its own instance's).

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::http::{ApiError, Caller, Problem};
use crate::store::audit::AuditEntry;

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    instance: Option<String>,
    cursor: Option<i64>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    data: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; `null` on the last.
    next_cursor: Option<i64>,
}

#[utoipa::path(operation_id = "listAudit", summary = "Read the audit log, newest first", get, path = "/v1/audit", tag = "instances",
    params(("instance" = Option<String>, Query, description = "only this instance's actions (an instance key sees only its own anyway)"),
        ("cursor" = Option<i64>, Query, description = "the previous page's next_cursor"), ("limit" = Option<u32>, Query, description = "1 to 500, 50 by default")),
    responses((status = 200, body = AuditPage), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown instance, or another instance's", body = Problem), (status = 422, description = "bad limit", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation("limit", format!("must be between 1 and {MAX_PAGE}")));
    }
    let instance = match (&caller, &query.instance) {
        (Caller::Admin, None) => None,
        (Caller::Instance(own), None) => Some(own.id),
        (_, Some(name)) => Some(caller.instance(&state, name).await?.id),
    };
    let data = state.store.audit_entries(instance, query.cursor, limit).await?;
    let next_cursor = (data.len() == limit as usize).then(|| data.last().map(|entry| entry.id)).flatten();
    Ok(Json(AuditPage { data, next_cursor }))
}
