//! `/v1/instances/{name}/feed` and `/feed/ack`: the catch-up feed. A receiver that was down
//! pulls the callbacks it missed, in a stable order behind a cursor, instead of waiting for
//! their next retries, and acknowledges those it has, which marks them delivered.

use axum::extract::{Path, Query, State};
use axum::Json;
use finhook_core::ids::{EndpointId, MessageId};
use serde::{Deserialize, Serialize};

use super::messages::MessageDetailView;
use crate::app::AppState;
use crate::http::audit::{self, Origin, Via};
use crate::http::{ApiError, ApiJson, Caller, Problem};
use crate::store::feed::{Acknowledged, FeedQuery, MAX_FEED};
use crate::store::InstanceId;

const DEFAULT_FEED: u32 = 20;

/// `raw` as one of `instance`'s endpoints, or a validation error at `path`.
async fn own_endpoint(state: &AppState, instance: InstanceId, raw: &str, path: &str) -> Result<EndpointId, ApiError> {
    let not_ours = || ApiError::validation(path, "is not an endpoint of this instance");
    let id = EndpointId::parse(raw.trim()).map_err(|_| not_ours())?;
    state.store.endpoint(instance, &id).await?.ok_or_else(not_ours)?;
    Ok(id)
}

#[derive(Debug, Deserialize)]
pub struct FeedParams {
    since: Option<String>,
    endpoint_id: Option<String>,
    status: Option<String>,
    login_id: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedPageView {
    /// Oldest first, each exactly as `GET /messages/{msg}` shows it: the payload, the
    /// deliveries and their attempts.
    data: Vec<MessageDetailView>,
    /// Pass as `since` for the next page; keep it to resume later. `null` only before the
    /// instance's first settled message. A page looks at 1,000 messages at most, so it may
    /// be short, even empty, with `has_more`.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<MessageId>,
    /// More has settled past `next_cursor`: ask again at once. When `false`, the feed is
    /// caught up to five seconds ago.
    has_more: bool,
}

#[utoipa::path(operation_id = "readFeed", summary = "The catch-up feed: the instance's callbacks, oldest first, behind a cursor", get, path = "/v1/instances/{name}/feed", tag = "feed",
    description = "Callbacks appear here five seconds after their ingest, so that the order behind a cursor never changes. `status=undelivered` (the default) keeps those with a delivery still pending or failed.",
    params(("name" = String, Path, description = "the instance name"),
        ("since" = Option<String>, Query, description = "next_cursor of the previous page (a message id); from the beginning when absent"),
        ("status" = Option<String>, Query, description = "`undelivered` (default) or `all`"),
        ("endpoint_id" = Option<String>, Query, description = "with `undelivered`: undelivered at this endpoint (ep_...)"),
        ("login_id" = Option<String>, Query, description = "only this LoginId's callbacks"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20")),
    responses((status = 200, description = "oldest first", body = FeedPageView), (status = 401, description = "no or bad key", body = Problem),
        (status = 404, description = "unknown instance, or another's", body = Problem), (status = 422, description = "invalid; `errors` names the parameter", body = Problem)))]
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(params): Query<FeedParams>,
) -> Result<Json<FeedPageView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let after = params
        .since
        .map(|since| {
            MessageId::parse(&since).map_err(|_| ApiError::validation("since", "is not a cursor this feed gave"))
        })
        .transpose()?;
    let undelivered = match params.status.as_deref() {
        None | Some("undelivered") => true,
        Some("all") => false,
        Some(_) => return Err(ApiError::validation("status", "must be `undelivered` or `all`")),
    };
    let limit = params.limit.unwrap_or(DEFAULT_FEED);
    if !(1..=MAX_FEED).contains(&limit) {
        return Err(ApiError::validation("limit", format!("must be between 1 and {MAX_FEED}")));
    }
    let endpoint = match params.endpoint_id {
        Some(id) => Some(own_endpoint(&state, instance.id, &id, "endpoint_id").await?),
        None => None,
    };
    let query = FeedQuery { after, undelivered, endpoint, login_id: params.login_id, limit };
    let page = state.store.feed(instance.id, &query, state.clock.now()).await?;
    let mut data = Vec::with_capacity(page.messages.len());
    for id in &page.messages {
        // Messages are never deleted under a reader except by retention, which a page
        // then simply skips.
        if let Some(detail) = state.store.message(instance.id, id).await? {
            data.push(detail.try_into()?);
        }
    }
    Ok(Json(FeedPageView { data, next_cursor: page.cursor, has_more: page.more }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// 1 to 100 message ids of this instance.
    message_ids: Vec<String>,
    /// Only the deliveries to this endpoint (ep_...); all of each message's otherwise.
    endpoint_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckedMessage {
    #[schema(value_type = String)]
    message_id: MessageId,
    /// How many of its deliveries (pending or failed) this marked delivered; 0 when none
    /// was left.
    deliveries: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckView {
    acknowledged: Vec<AckedMessage>,
}

#[utoipa::path(operation_id = "acknowledgeFeed", summary = "Acknowledge callbacks pulled from the feed: their deliveries become delivered", post, path = "/v1/instances/{name}/feed/ack", tag = "feed",
    description = "Each pending or failed delivery of the messages is marked delivered, with an attempt that says it was acknowledged through the feed (no request made) and its entry in the delivery ledger. All or nothing: one unknown id changes nothing.",
    params(("name" = String, Path, description = "the instance name")), request_body = AckRequest,
    responses((status = 200, body = AckView), (status = 401, description = "no or bad key", body = Problem),
        (status = 404, description = "unknown instance, or another's", body = Problem),
        (status = 422, description = "invalid, or a message that is not this instance's; `errors` names it", body = Problem)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<AckRequest>,
) -> Result<Json<AckView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    if request.message_ids.is_empty() || request.message_ids.len() > MAX_FEED as usize {
        return Err(ApiError::validation("$.message_ids", format!("must hold 1 to {MAX_FEED} message ids")));
    }
    let ids = request
        .message_ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            MessageId::parse(id).map_err(|e| ApiError::validation(&format!("$.message_ids[{n}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let endpoint = match &request.endpoint_id {
        Some(id) => Some(own_endpoint(&state, instance.id, id, "$.endpoint_id").await?),
        None => None,
    };
    let acknowledged = match state.store.acknowledge(instance.id, &ids, endpoint.as_ref(), state.clock.now()).await? {
        Acknowledged::Done(done) => done,
        Acknowledged::Unknown(id) => {
            let n = ids.iter().position(|known| *known == id).unwrap_or(0);
            return Err(ApiError::validation(&format!("$.message_ids[{n}]"), "is not a message of this instance"));
        }
    };
    let detail = ids.iter().map(MessageId::as_str).collect::<Vec<_>>().join(",");
    audit::record(&state, audit::actor(&caller, Via::Api), &origin, "feed.ack", Some(instance.id), Some(detail)).await;
    Ok(Json(AckView {
        acknowledged: acknowledged
            .into_iter()
            .map(|(message_id, deliveries)| AckedMessage { message_id, deliveries })
            .collect(),
    }))
}
