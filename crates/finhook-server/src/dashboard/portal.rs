//! The self-service portal in the dashboard: a portal link opens a session scoped to its
//! instance (what an instance key would see), read-write or read-only, that ends when the
//! link expires or is revoked (checked on every request); and the instance page's section
//! where an operator makes and revokes links. A portal session can manage no links.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use finhook_core::ids::PortalLinkId;
use finhook_core::secret::KeyHash;
use serde::Deserialize;

use super::pages::{act, failure, plain_failure, render, time};
use super::session::{SessionOwner, COOKIE};
use crate::app::AppState;
use crate::http::audit::{self, Origin};
use crate::http::ApiError;
use crate::store::{Instance, InstanceId};

/// The session's owner, if it has a live session (no store read).
pub(super) fn owner(state: &AppState, jar: &CookieJar) -> Option<SessionOwner> {
    let token = jar.get(COOKIE)?.value().to_string();
    state.sessions.owner(&token, state.clock.now())
}

pub(super) fn read_only_page() -> Response {
    plain_failure(
        StatusCode::FORBIDDEN,
        "This portal link is read-only: it shows the instance and changes nothing. Ask the operator for a read-write link.",
        true,
    )
}

fn ended_page() -> Response {
    plain_failure(
        StatusCode::UNAUTHORIZED,
        "This portal link has expired or was revoked: ask the operator for a new one.",
        false,
    )
}

/// The instance of a portal session whose link still lives; otherwise the session ends.
pub(super) async fn still_open(
    state: &AppState,
    token: &str,
    instance: &str,
    link: &PortalLinkId,
) -> Result<Instance, Response> {
    let live = match state.store.portal_link(link).await {
        Ok(found) => found.is_some_and(|link| link.live(state.clock.now())),
        Err(error) => return Err(failure(error.into())),
    };
    if !live {
        state.sessions.close(token);
        return Err(ended_page());
    }
    match state.store.instance_by_name(instance).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(ended_page()),
        Err(error) => Err(failure(error.into())),
    }
}

#[derive(Template)]
#[template(path = "portal.html")]
struct Landing {
    signed_in: bool,
    name: String,
    read_only: bool,
    expires_at: String,
}

/// `GET /portal/{token}`: opens a session for a live link's instance and shows where to go.
/// (A page with a link, not a redirect: the session cookie is `SameSite=Strict`, which a
/// browser would not send on a redirect that started on another site, an e-mail's link.)
pub async fn open(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Response {
    let (link, name) = match state.store.portal_link_by_token(&KeyHash::of(token.trim())).await {
        Ok(Some(found)) => found,
        Ok(None) => return plain_failure(StatusCode::NOT_FOUND, "No such portal link.", false),
        Err(error) => return failure(error.into()),
    };
    let now = state.clock.now();
    if !link.live(now) {
        return ended_page();
    }
    let owner = SessionOwner::Portal { instance: name.clone(), link: link.id.clone(), read_only: link.read_only };
    let session = state.sessions.open(owner, now);
    let actor = format!("portal {}", link.id);
    audit::record(&state, actor, &origin, "portal_link.open", Some(link.instance_id), Some(link.id.to_string())).await;
    let cookie = Cookie::build((COOKIE, session))
        .http_only(true)
        .secure(state.tls)
        .same_site(SameSite::Strict)
        .path("/dashboard")
        .build();
    let page = Landing { signed_in: false, name, read_only: link.read_only, expires_at: time(link.expires_at) };
    (jar.add(cookie), render(&page)).into_response()
}

/// One of an instance's links, for the instance page.
pub(super) struct LinkRow {
    pub id: String,
    pub access: &'static str,
    pub created_at: String,
    pub expires_at: String,
    pub state: &'static str,
    pub created_by: String,
}

/// `instance`'s links for its page: `None` in a portal session, which manages none.
pub(super) async fn rows(
    state: &AppState,
    jar: &CookieJar,
    instance: InstanceId,
) -> Result<Option<Vec<LinkRow>>, ApiError> {
    if matches!(owner(state, jar), Some(SessionOwner::Portal { .. })) {
        return Ok(None);
    }
    let now = state.clock.now();
    let links = state.store.portal_links(instance).await?;
    Ok(Some(
        links
            .into_iter()
            .map(|link| LinkRow {
                id: link.id.to_string(),
                access: if link.read_only { "read-only" } else { "read-write" },
                created_at: time(link.created_at),
                expires_at: time(link.expires_at),
                state: match (link.revoked_at, link.live(now)) {
                    (Some(_), _) => "revoked",
                    (None, true) => "live",
                    (None, false) => "expired",
                },
                created_by: link.created_by,
            })
            .collect(),
    ))
}

/// What a portal session sees of its own link, for the instance page.
pub(super) fn note(state: &AppState, jar: &CookieJar) -> Option<&'static str> {
    match owner(state, jar) {
        Some(SessionOwner::Portal { read_only: true, .. }) => Some("You are using a read-only portal link."),
        Some(SessionOwner::Portal { read_only: false, .. }) => Some("You are using a portal link."),
        _ => None,
    }
}

fn no_links_in_portal(state: &AppState, jar: &CookieJar) -> Option<Response> {
    matches!(owner(state, jar), Some(SessionOwner::Portal { .. }))
        .then(|| plain_failure(StatusCode::FORBIDDEN, "A portal session cannot make or revoke portal links.", true))
}

#[derive(Deserialize)]
pub struct NewLinkForm {
    hours: i64,
    #[serde(default)]
    read_only: Option<String>,
}

#[derive(Template)]
#[template(path = "portal_link.html")]
struct CreatedLink {
    signed_in: bool,
    name: String,
    url: String,
    read_only: bool,
    expires_at: String,
}

/// `POST /dashboard/instances/{name}/portal-links`: a new link, shown once.
pub async fn create(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    headers: axum::http::HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<NewLinkForm>,
) -> Response {
    if let Some(refused) = no_links_in_portal(&state, &jar) {
        return refused;
    }
    let read_only = form.read_only.is_some();
    let result = act(&state, &origin, &jar, &name, "portal_link.create", async |instance| {
        let by = match owner(&state, &jar) {
            Some(SessionOwner::Admin) => "admin (dashboard)".to_string(),
            _ => format!("instance:{} (dashboard)", instance.name),
        };
        let seconds = form.hours.checked_mul(3600);
        let (link, token) = crate::api::portal::create_for(&state, instance.id, seconds, read_only, by).await?;
        let (url, _) = crate::api::portal::link_url(&state, &headers, &token);
        let page = CreatedLink {
            signed_in: true,
            name: instance.name.clone(),
            url,
            read_only: link.read_only,
            expires_at: time(link.expires_at),
        };
        Ok((page, link.id.to_string()))
    })
    .await;
    result.map_or_else(|page| page, |page| render(&page))
}

/// `POST /dashboard/instances/{name}/portal-links/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = no_links_in_portal(&state, &jar) {
        return refused;
    }
    let result = act(&state, &origin, &jar, &name, "portal_link.revoke", async |instance| {
        crate::api::portal::revoke_for(&state, instance.id, &id).await?;
        Ok(((), id.clone()))
    })
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/dashboard/instances/{name}#portal-links")).into_response(),
        Err(page) => page,
    }
}
