//! `/v1/instances/{name}/endpoints/{id}/deliveries` and `/test`: an endpoint's newest
//! deliveries, and a test callback sent to it alone.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use finhook_core::ids::{DeliveryId, MessageId};
use serde::{Deserialize, Serialize};

use super::messages::DeliveryView;
use crate::app::AppState;
use crate::http::audit::{self, Origin, Via};
use crate::http::{instance_endpoint, ApiError, Caller, Problem};
use crate::store::activity::{RecentDelivery, MAX_RECENT};
use crate::test_callback::{self, TestCallbackError};

impl From<TestCallbackError> for ApiError {
    fn from(error: TestCallbackError) -> Self {
        match error {
            TestCallbackError::OnlyEvents => ApiError::Conflict(error.to_string()),
            TestCallbackError::EndpointGone => ApiError::NotFound("endpoint"),
            TestCallbackError::Store(error) => ApiError::Store(error),
            TestCallbackError::Build(_) => {
                ApiError::Internal { what: "build the test callback", source: Box::new(error) }
            }
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestSentView {
    #[schema(value_type = String)]
    message_id: MessageId,
    #[schema(value_type = String)]
    delivery_id: DeliveryId,
    /// The callback type sent: KYC, or the first callback type the endpoint takes.
    response_type: &'static str,
    /// The callback's `Tag`, the same on every test callback.
    tag: &'static str,
}

#[utoipa::path(operation_id = "testEndpoint", summary = "Send a test callback to this endpoint alone", post, path = "/v1/instances/{name}/endpoints/{id}/test", tag = "endpoints",
    params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the endpoint id (ep_...)")),
    responses((status = 202, description = "stored and on its way: a synthetic callback (Tag `finhook-test`, a fresh LoginId) of a type the endpoint takes, signed and retried like any other; follow it at `/messages/{message_id}`", body = TestSentView),
        (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem),
        (status = 409, description = "the endpoint takes only operational events", body = Problem)))]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path((name, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<TestSentView>), ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let endpoint = instance_endpoint(&state, instance.id, &id).await?;
    let sent = test_callback::send(state.store.as_ref(), &state.dispatch, &endpoint, state.clock.now()).await?;
    audit::record(&state, audit::actor(&caller, Via::Api), &origin, "endpoint.test", Some(instance.id), Some(id)).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(TestSentView {
            message_id: sent.message_id,
            delivery_id: sent.delivery_id,
            response_type: sent.response_type.as_str(),
            tag: test_callback::TEST_TAG,
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// One delivery to the endpoint, with its message and its last attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointDeliveryView {
    #[schema(value_type = String)]
    message_id: MessageId,
    response_type: &'static str,
    /// `attempts` holds only the last attempt (none before the first).
    #[serde(flatten)]
    delivery: DeliveryView,
}

impl From<RecentDelivery> for EndpointDeliveryView {
    fn from(recent: RecentDelivery) -> Self {
        Self {
            message_id: recent.message_id,
            response_type: recent.response_type.as_str(),
            delivery: DeliveryView::from(recent.delivery),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointDeliveriesPage {
    data: Vec<EndpointDeliveryView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page. A page looks
    /// at the instance's next 1,000 messages at most, so it may be short, even empty, and
    /// still have a next one.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<MessageId>,
}

#[utoipa::path(operation_id = "listEndpointDeliveries", summary = "An endpoint's deliveries, newest message first, each with its last attempt", get, path = "/v1/instances/{name}/endpoints/{id}/deliveries", tag = "endpoints",
    params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the endpoint id (ep_...)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("limit" = Option<u32>, Query, description = "1 to 100, default 20")),
    responses((status = 200, description = "newest first", body = EndpointDeliveriesPage), (status = 401, description = "no or bad key", body = Problem),
        (status = 404, description = "unknown, or another instance's", body = Problem), (status = 422, description = "invalid; `errors` names the paths", body = Problem)))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
    Query(query): Query<DeliveriesQuery>,
) -> Result<Json<EndpointDeliveriesPage>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let endpoint = instance_endpoint(&state, instance.id, &id).await?;
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_RECENT).contains(&limit) {
        return Err(ApiError::validation("limit", format!("must be between 1 and {MAX_RECENT}")));
    }
    let before = query
        .cursor
        .map(|c| {
            MessageId::parse(&c)
                .map_err(|_| ApiError::validation("cursor", "must be a next_cursor from an earlier page"))
        })
        .transpose()?;
    let page = state.store.recent_deliveries(instance.id, &endpoint.id, before.as_ref(), limit).await?;
    let data = page.deliveries.into_iter().map(EndpointDeliveryView::from).collect();
    Ok(Json(EndpointDeliveriesPage { data, next_cursor: page.next }))
}

/// What `POST …/endpoints/{id}/probe` takes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeRequest {
    /// A URL with `{login_id}` where the receiver shows what it stored of a login, to check
    /// that a duplicate is stored once (under the same target rules as the endpoint's URL).
    check_url: Option<String>,
}

#[utoipa::path(operation_id = "probeEndpoint", summary = "Grade the endpoint's receiver: signed callbacks and deliberate faults", post, path = "/v1/instances/{name}/endpoints/{id}/probe", tag = "endpoints",
    params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the endpoint id (ep_...)")), request_body = ProbeRequest,
    responses((status = 200, description = "the report card (each check `pass`, `fail` or `skipped`, and `passed`); the probe's callbacks carry Tag `finhook-test` and fresh LoginIds, and are not stored as messages", body = crate::probe::Report),
        (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem),
        (status = 409, description = "the endpoint signs with Ed25519: the probe signs with the endpoint's HMAC secret", body = Problem),
        (status = 422, description = "a `check_url` that is not allowed; `errors` names it", body = Problem)))]
pub async fn probe(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path((name, id)): Path<(String, String)>,
    crate::http::json::ApiJson(request): crate::http::json::ApiJson<ProbeRequest>,
) -> Result<Json<crate::probe::Report>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let endpoint = instance_endpoint(&state, instance.id, &id).await?;
    let report = run_probe(&state, &endpoint, request.check_url).await?;
    audit::record(&state, audit::actor(&caller, Via::Api), &origin, "endpoint.probe", Some(instance.id), Some(id))
        .await;
    Ok(Json(report))
}

/// Probes `endpoint`'s URL with its current secret (and client certificate, if any).
pub(crate) async fn run_probe(
    state: &AppState,
    endpoint: &crate::store::Endpoint,
    check_url: Option<String>,
) -> Result<crate::probe::Report, ApiError> {
    if endpoint.signing == crate::store::Signing::Ed25519 {
        return Err(ApiError::Conflict(
            "this endpoint signs with ed25519 (v1a); the probe signs with an HMAC secret, so its receiver would rightly refuse every callback".into(),
        ));
    }
    if let Some(url) = &check_url {
        state
            .targets
            .check_url(&url.replace("{login_id}", "x"))
            .map_err(|e| ApiError::validation("$.check_url", e.to_string()))?;
    }
    let now = state.clock.now();
    let dispatch = state.store.dispatch_endpoint(&endpoint.id, now).await?.ok_or(ApiError::NotFound("endpoint"))?;
    let secret = dispatch.secrets.into_iter().next().map(|(secret, _)| secret).ok_or(ApiError::NotFound("endpoint"))?;
    let target = crate::probe::Target { url: endpoint.url.clone(), secret, check_url, identity: dispatch.identity };
    crate::probe::probe(&state.probe_client, &state.certificates, &target, now)
        .await
        .map_err(|e| ApiError::Internal { what: "run the probe", source: Box::new(e) })
}
