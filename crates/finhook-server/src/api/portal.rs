//! `/v1/instances/{name}/portal-link` and `/portal-links`: self-service portal links. A
//! link opens the dashboard scoped to one instance for whoever holds it (an integrator),
//! without sharing the instance's key; it expires, and can be revoked.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use finhook_core::ids::PortalLinkId;
use finhook_core::secret::KeyHash;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::http::audit::{self, Origin, Via};
use crate::http::{ApiError, ApiJson, Caller, Problem};
use crate::store::portal::{NewPortalLink, PortalLink};

/// How long a link lasts unless asked otherwise, and the bounds of what may be asked.
pub const DEFAULT_LIFETIME_SECONDS: i64 = 3600;
pub const MIN_LIFETIME_SECONDS: i64 = 60;
pub const MAX_LIFETIME_SECONDS: i64 = 7 * 24 * 3600;

/// The prefix of a portal link's token, so that one found somewhere is recognised.
pub const TOKEN_PREFIX: &str = "fhp_";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPortalLinkRequest {
    /// 60 to 604,800 (seven days); 3,600 by default.
    expires_in_seconds: Option<i64>,
    /// Sessions opened from the link may look but change nothing; `false` by default.
    read_only: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalLinkView {
    #[schema(value_type = String)]
    id: PortalLinkId,
    read_only: bool,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    created_by: String,
    /// Not revoked and not expired: it opens sessions, and those it opened go on.
    live: bool,
}

impl PortalLinkView {
    pub fn of(link: PortalLink, now: DateTime<Utc>) -> Self {
        let live = link.live(now);
        Self {
            id: link.id,
            read_only: link.read_only,
            created_at: link.created_at,
            expires_at: link.expires_at,
            revoked_at: link.revoked_at,
            created_by: link.created_by,
            live,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedPortalLink {
    #[serde(flatten)]
    link: PortalLinkView,
    /// The link to hand over, shown this once (only its hash is kept): this server's
    /// address as the request named it, then `path`.
    url: String,
    path: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalLinkPage {
    data: Vec<PortalLinkView>,
    /// Always `null`: the links come whole.
    #[schema(value_type = Option<String>)]
    next_cursor: Option<String>,
}

/// A new link for `instance`, made by `created_by`: the stored link and its token.
pub async fn create_for(
    state: &AppState,
    instance: crate::store::InstanceId,
    expires_in_seconds: Option<i64>,
    read_only: bool,
    created_by: String,
) -> Result<(PortalLink, String), ApiError> {
    let seconds = expires_in_seconds.unwrap_or(DEFAULT_LIFETIME_SECONDS);
    if !(MIN_LIFETIME_SECONDS..=MAX_LIFETIME_SECONDS).contains(&seconds) {
        return Err(ApiError::validation(
            "$.expires_in_seconds",
            format!("must be between {MIN_LIFETIME_SECONDS} and {MAX_LIFETIME_SECONDS}"),
        ));
    }
    let token = format!("{TOKEN_PREFIX}{}", finhook_core::secret::random_token());
    let now = state.clock.now();
    let link = NewPortalLink {
        id: PortalLinkId::generate(),
        instance_id: instance,
        token_hash: KeyHash::of(&token),
        read_only,
        created_at: now,
        expires_at: now + Duration::seconds(seconds),
        created_by,
    };
    Ok((state.store.create_portal_link(link).await?, token))
}

#[utoipa::path(operation_id = "createPortalLink", summary = "Create a self-service portal link to this instance's dashboard", post, path = "/v1/instances/{name}/portal-link", tag = "portal",
    description = "The link opens the dashboard scoped to this instance (its endpoints, messages, attempts, redelivery, the catch-up feed) for whoever holds it, without the instance's key, until it expires or is revoked. Read-only links open sessions that can change nothing.",
    params(("name" = String, Path, description = "the instance name")), request_body = NewPortalLinkRequest,
    responses((status = 201, description = "the link, shown once", body = CreatedPortalLink), (status = 401, description = "no or bad key", body = Problem),
        (status = 404, description = "unknown instance, or another's", body = Problem), (status = 422, description = "invalid; `errors` names the field", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    headers: HeaderMap,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<NewPortalLinkRequest>,
) -> Result<(StatusCode, Json<CreatedPortalLink>), ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let actor = audit::actor(&caller, Via::Api);
    let (link, token) =
        create_for(&state, instance.id, request.expires_in_seconds, request.read_only.unwrap_or(false), actor.clone())
            .await?;
    audit::record(&state, actor, &origin, "portal_link.create", Some(instance.id), Some(link.id.to_string())).await;
    let (url, path) = link_url(&state, &headers, &token);
    let link = PortalLinkView::of(link, state.clock.now());
    Ok((StatusCode::CREATED, Json(CreatedPortalLink { link, url, path })))
}

#[utoipa::path(operation_id = "listPortalLinks", summary = "This instance's portal links, newest first", get, path = "/v1/instances/{name}/portal-links", tag = "portal",
    params(("name" = String, Path, description = "the instance name")),
    responses((status = 200, body = PortalLinkPage), (status = 401, description = "no or bad key", body = Problem),
        (status = 404, description = "unknown instance, or another's", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<PortalLinkPage>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let now = state.clock.now();
    let links = state.store.portal_links(instance.id).await?;
    Ok(Json(PortalLinkPage {
        data: links.into_iter().map(|l| PortalLinkView::of(l, now)).collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(operation_id = "revokePortalLink", summary = "Revoke a portal link: it opens nothing more, and the sessions it opened end", delete, path = "/v1/instances/{name}/portal-links/{id}", tag = "portal",
    params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the link id (ptl_...)")),
    responses((status = 200, description = "revoked (or already)", body = PortalLinkView), (status = 401, description = "no or bad key", body = Problem),
        (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<PortalLinkView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let link = revoke_for(&state, instance.id, &id).await?;
    audit::record(&state, audit::actor(&caller, Via::Api), &origin, "portal_link.revoke", Some(instance.id), Some(id))
        .await;
    Ok(Json(PortalLinkView::of(link, state.clock.now())))
}

/// The link that opens `token`: this server's address as the request named it, then the
/// path; and the path alone.
pub fn link_url(state: &AppState, headers: &HeaderMap, token: &str) -> (String, String) {
    let path = format!("/portal/{token}");
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    (format!("{}://{host}{path}", if state.tls { "https" } else { "http" }), path)
}

/// Revokes `instance`'s link `raw`; 404 when it is not one of its links.
pub async fn revoke_for(
    state: &AppState,
    instance: crate::store::InstanceId,
    raw: &str,
) -> Result<PortalLink, ApiError> {
    let id = PortalLinkId::parse(raw.trim()).map_err(|_| ApiError::NotFound("portal link"))?;
    state.store.revoke_portal_link(instance, &id, state.clock.now()).await?.ok_or(ApiError::NotFound("portal link"))
}
