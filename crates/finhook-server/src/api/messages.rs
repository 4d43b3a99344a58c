//! Callbacks in (`/callbacks`) and their history out (`/messages`, `/logins`).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use finhook_core::events::MessageType;
use finhook_core::ids::{DeliveryId, EndpointId, MessageId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::app::AppState;
use crate::http::audit::{self, Origin, Via};
use crate::http::ApiJson;
use crate::http::{ApiError, Caller, Problem};
use crate::ingest::{ingest_callback, IngestRequest};
use crate::store::{
    AttemptRecord, DeliveryRecord, DeliveryStatus, ErrorClass, MessageDetail, MessageFilter, MessageSummary,
};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 250;
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ingested {
    #[schema(value_type = String, example = "msg_01JD0000000000000000000000")]
    message_id: MessageId,
    /// Deliveries scheduled: one per enabled endpoint that takes the callback's type (0 for
    /// an idempotent replay).
    deliveries: usize,
    /// Set when the callback is stored but no endpoint takes it: nothing will be sent
    /// unless an endpoint is added and the message redelivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

#[utoipa::path(operation_id = "ingestCallback", summary = "Ingest one Flinks callback (202 once durably stored)", post, path = "/v1/instances/{name}/callbacks", tag = "messages", params(("name" = String, Path, description = "the instance name"),
        ("Idempotency-Key" = Option<String>, Header, description = "the same key and body give the same message_id")),
    request_body(content = Object, description = "the Flinks callback itself (KYC, GetAccountsDetail or Investments), stored and sent byte for byte", content_type = "application/json"),
    responses((status = 202, description = "durably stored", body = Ingested), (status = 400, description = "not JSON, not an object, or too deep", body = Problem),
        (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem), (status = 409, description = "Idempotency-Key reused with another body", body = Problem),
        (status = 413, description = "over the size limit", body = Problem), (status = 422, description = "invalid; `errors` names the paths", body = Problem),
        (status = 429, description = "the instance is over its rate; `Retry-After` says when to retry", body = Problem)))]
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let result = accept(&state, caller, &name, &headers, body).await;
    if let Err(error) = &result {
        state.metrics.callback_rejected(error.status().as_u16());
        if let ApiError::Store(store) = error {
            state.metrics.store_write_failed(store.kind());
        }
    }
    result
}

async fn accept(
    state: &AppState,
    caller: Caller,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let instance = caller.instance(state, name).await?;
    // Before the body is read: a tenant over its rate costs this node next to nothing.
    state.ingest_limit.take(instance.id, state.clock.now())?;
    let idempotency_key = idempotency_key(headers)?;
    let over_quota = |bytes: u64| {
        let quota = state.instance_quota_bytes;
        (quota > 0 && instance.stored_bytes.saturating_add(bytes) > quota)
            .then_some(ApiError::QuotaExceeded { stored_bytes: instance.stored_bytes, quota_bytes: quota })
    };
    // Before the body is read when its length is declared, and again once it is known.
    if let Some(refused) = over_quota(crate::http::bodies::declared_length(headers).unwrap_or(0)) {
        return Err(refused);
    }
    let body = state.bodies.read(headers, body, state.max_body_bytes).await?;
    if let Some(refused) = over_quota(u64::try_from(body.bytes.len()).unwrap_or(u64::MAX)) {
        return Err(refused);
    }
    let request = IngestRequest {
        instance: instance.id,
        body: &body.bytes,
        idempotency_key: idempotency_key.as_deref(),
        limits: state.parse_limits,
        now: state.clock.now(),
    };
    let accepted = ingest_callback(state.store.as_ref(), &state.dispatch, request).await?;
    if !accepted.replayed {
        state.metrics.callback_ingested(accepted.response_type.as_str());
    }
    let warning = (!accepted.replayed && accepted.deliveries == 0).then(|| {
        format!(
            "stored, but no enabled endpoint of this instance takes {}: nothing will be sent until one does and the message is redelivered",
            accepted.response_type
        )
    });
    let ingested = Ingested { message_id: accepted.message_id, deliveries: accepted.deliveries, warning };
    let mut response = (StatusCode::ACCEPTED, Json(ingested)).into_response();
    if accepted.replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let bad = || ApiError::BadRequest {
        title: "Bad Idempotency-Key",
        detail: format!("the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
    };
    let key = value.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    login_id: Option<String>,
    tag: Option<String>,
    request_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    response_type: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    #[schema(value_type = String)]
    id: MessageId,
    response_type: &'static str,
    login_id: Option<String>,
    request_id: Option<String>,
    tag: Option<String>,
    created_at: DateTime<Utc>,
    /// In listings: the message's state at each endpoint it went to (its latest delivery
    /// there), oldest delivery first; empty when it went to none.
    #[serde(skip_serializing_if = "Option::is_none")]
    statuses: Option<Vec<&'static str>>,
}

impl From<MessageSummary> for MessageView {
    fn from(summary: MessageSummary) -> Self {
        Self {
            id: summary.id,
            response_type: summary.response_type.as_str(),
            login_id: summary.login_id,
            request_id: summary.request_id,
            tag: summary.tag,
            created_at: summary.created_at,
            statuses: None,
        }
    }
}

impl MessageView {
    /// A listing's row, with the message's state at each endpoint.
    fn listed(summary: MessageSummary) -> Self {
        let statuses = summary.delivery_statuses.iter().map(|status| status.as_str()).collect();
        Self { statuses: Some(statuses), ..Self::from(summary) }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page {
    data: Vec<MessageView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<MessageId>,
}

#[utoipa::path(operation_id = "listMessages", summary = "List an instance's messages, newest first", get, path = "/v1/instances/{name}/messages", tag = "messages", params(("name" = String, Path, description = "the instance name"),
        ("login_id" = Option<String>, Query), ("response_type" = Option<String>, Query), ("status" = Option<String>, Query, description = "messages with a delivery in this status"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"), ("limit" = Option<u32>, Query, description = "1 to 250, default 50")),
    responses((status = 200, description = "newest first", body = Page), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem), (status = 422, description = "invalid; `errors` names the paths", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation("limit", format!("must be between 1 and {MAX_PAGE}")));
    }
    let time = |name: &str, text: Option<String>| {
        text.map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::validation(name, "must be an RFC 3339 time, e.g. 2026-11-29T14:00:00Z"))
        })
        .transpose()
    };
    let filter = MessageFilter {
        login_id: query.login_id,
        tag: query.tag,
        request_id: query.request_id,
        since: time("since", query.since)?,
        until: time("until", query.until)?,
        response_type: query
            .response_type
            .map(|t| {
                MessageType::parse(&t)
                    .ok_or_else(|| ApiError::validation("response_type", format!("must be {}", MessageType::names())))
            })
            .transpose()?,
        status: query
            .status
            .map(|s| {
                DeliveryStatus::parse(&s)
                    .ok_or_else(|| ApiError::validation("status", "must be pending, delivered, failed or cancelled"))
            })
            .transpose()?,
        before: query
            .cursor
            .map(|c| {
                MessageId::parse(&c)
                    .map_err(|_| ApiError::validation("cursor", "must be a next_cursor from an earlier page"))
            })
            .transpose()?,
        limit: limit + 1,
    };
    let mut messages = state.store.list_messages(instance.id, &filter).await?;
    let next_cursor = (messages.len() > limit as usize).then(|| {
        messages.truncate(limit as usize);
        messages.last().map(|m| m.id.clone())
    });
    Ok(Json(Page { data: messages.into_iter().map(MessageView::listed).collect(), next_cursor: next_cursor.flatten() }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    id: String,
    attempt_number: u32,
    started_at: DateTime<Utc>,
    latency_ms: u64,
    status_code: Option<u16>,
    error_class: Option<ErrorClass>,
    error_detail: Option<String>,
    response_excerpt: Option<String>,
    /// Bytes of the answer read for the excerpt (the excerpt itself is lossy UTF-8).
    response_bytes: Option<u64>,
    succeeded: bool,
}

impl From<AttemptRecord> for AttemptView {
    fn from(a: AttemptRecord) -> Self {
        Self {
            id: a.id.to_string(),
            attempt_number: a.attempt_number,
            started_at: a.started_at,
            latency_ms: a.latency_ms,
            status_code: a.status_code,
            error_class: a.error_class,
            error_detail: a.error_detail,
            response_excerpt: a.response_excerpt,
            response_bytes: a.response_bytes,
            succeeded: a.succeeded,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    #[schema(value_type = String)]
    id: DeliveryId,
    #[schema(value_type = String)]
    endpoint_id: EndpointId,
    status: &'static str,
    attempts_made: u32,
    next_attempt_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    /// A later delivery to the same endpoint (a redelivery) took its place; kept as history.
    superseded: bool,
    /// Its `webhook-sequence` (the callback's place among its LoginId's callbacks to this
    /// endpoint); `null` for a callback without a LoginId.
    sequence: Option<u64>,
    attempts: Vec<AttemptView>,
}

impl From<DeliveryRecord> for DeliveryView {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            status: d.status.as_str(),
            attempts_made: d.attempts_made,
            next_attempt_at: d.next_attempt_at,
            created_at: d.created_at,
            superseded: d.superseded,
            sequence: d.sequence,
            attempts: d.attempts.into_iter().map(AttemptView::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageDetailView {
    #[serde(flatten)]
    message: MessageView,
    /// The callback exactly as ingested.
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
    deliveries: Vec<DeliveryView>,
}

impl TryFrom<MessageDetail> for MessageDetailView {
    type Error = ApiError;
    fn try_from(detail: MessageDetail) -> Result<Self, ApiError> {
        let text = String::from_utf8(detail.payload).map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        let payload = RawValue::from_string(text).map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
        Ok(Self {
            message: detail.summary.into(),
            payload,
            deliveries: detail.deliveries.into_iter().map(DeliveryView::from).collect(),
        })
    }
}

fn message_id(raw: &str) -> Result<MessageId, ApiError> {
    MessageId::parse(raw).map_err(|_| ApiError::NotFound("message"))
}

#[utoipa::path(operation_id = "getMessage", summary = "Show a message with its deliveries and attempts", get, path = "/v1/instances/{name}/messages/{msg}", tag = "messages", params(("name" = String, Path, description = "the instance name"), ("msg" = String, Path, description = "the message id (msg_...)")),
    responses((status = 200, body = MessageDetailView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, msg)): Path<(String, String)>,
) -> Result<Json<MessageDetailView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let detail = state.store.message(instance.id, &message_id(&msg)?).await?.ok_or(ApiError::NotFound("message"))?;
    Ok(Json(detail.try_into()?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverRequest {
    endpoint_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redelivered {
    #[schema(value_type = Vec<String>)]
    deliveries: Vec<DeliveryId>,
}

#[utoipa::path(operation_id = "redeliverMessage", summary = "Redeliver a message to every endpoint or one", post, path = "/v1/instances/{name}/messages/{msg}/redeliver", tag = "messages", params(("name" = String, Path, description = "the instance name"), ("msg" = String, Path, description = "the message id (msg_...)")), request_body = RedeliverRequest,
    responses((status = 202, body = Redelivered), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem), (status = 422, description = "invalid; `errors` names the paths", body = Problem)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path((name, msg)): Path<(String, String)>,
    ApiJson(request): ApiJson<RedeliverRequest>,
) -> Result<(StatusCode, Json<Redelivered>), ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let endpoint = request
        .endpoint_id
        .map(|id| EndpointId::parse(&id).map_err(|e| ApiError::validation("$.endpoint_id", e.to_string())))
        .transpose()?;
    let deliveries = state
        .store
        .redeliver(instance.id, &message_id(&msg)?, endpoint.as_ref(), state.clock.now())
        .await?
        .ok_or(ApiError::NotFound(if endpoint.is_some() { "message or endpoint" } else { "message" }))?;
    state.dispatch.rescan();
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "message.redeliver", Some(instance.id), Some(msg)).await;
    Ok((StatusCode::ACCEPTED, Json(Redelivered { deliveries })))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginView {
    login_id: String,
    /// The most recent Tag among the callbacks.
    tag: Option<String>,
    callbacks: Vec<MessageDetailView>,
}

#[utoipa::path(operation_id = "getLogin", summary = "Every callback of one LoginId, with its delivery state", get, path = "/v1/instances/{name}/logins/{login_id}", tag = "messages", params(("name" = String, Path, description = "the instance name"), ("login_id" = String, Path)),
    responses((status = 200, description = "every callback of the LoginId, oldest first, with its deliveries", body = LoginView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, login_id)): Path<(String, String)>,
) -> Result<Json<LoginView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let messages = state.store.login_messages(instance.id, &login_id).await?;
    if messages.is_empty() {
        return Err(ApiError::NotFound("login"));
    }
    let tag = messages.iter().rev().find_map(|m| m.summary.tag.clone());
    let callbacks = messages.into_iter().map(MessageDetailView::try_from).collect::<Result<_, _>>()?;
    Ok(Json(LoginView { login_id, tag, callbacks }))
}
