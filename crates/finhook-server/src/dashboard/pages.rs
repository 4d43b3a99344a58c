//! The dashboard's pages: thin handlers that read the store and fill a template.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, SecondsFormat, Utc};
use finhook_core::ids::MessageId;
use finhook_core::secret::KeyHash;
use serde::Deserialize;

use super::session::{SessionOwner, COOKIE};
use crate::app::AppState;
use crate::http::audit::{self, Origin};
use crate::http::{ApiError, Caller};
use crate::store::{DeliveryStatus, MessageFilter};
use finhook_core::events::MessageType;

const PAGE_SIZE: u32 = 50;

/// Renders a template with headers that keep the page (personal data) out of caches and
/// frames and allow no script at all.
pub(super) fn render(template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = Html(html).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
                ),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            response
        }
        Err(error) => {
            tracing::error!(error = %error, "a dashboard template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

pub(super) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    signed_in: bool,
    title: String,
    message: String,
}

/// An error as a page in the dashboard's layout, with its status.
pub(super) fn failure(error: ApiError) -> Response {
    failure_page(error, true)
}

/// [`failure`], for a page of someone signed in or not.
pub(super) fn failure_page(error: ApiError, signed_in: bool) -> Response {
    let status = error.status();
    let message = match &error {
        ApiError::Store(_) => "the store failed; nothing was changed; try again".to_string(),
        other => other.to_string(),
    };
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let mut response = render(&ErrorPage { signed_in, title, message });
    *response.status_mut() = status;
    response
}

/// An error page with its own words, for someone signed in or not.
pub(super) fn plain_failure(status: StatusCode, message: &str, signed_in: bool) -> Response {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let mut response = render(&ErrorPage { signed_in, title, message: message.to_string() });
    *response.status_mut() = status;
    response
}

/// An operator's action on instance `name` from a dashboard form: the signed-in caller's
/// instance; runs `work` on it, which answers what it made and what it acted on, and
/// when it succeeds records `action` on that target in the audit log. Answers what `work`
/// made, or the sign-in redirect or the error page.
pub(super) async fn act<T>(
    state: &AppState,
    origin: &Origin,
    jar: &CookieJar,
    name: &str,
    action: &'static str,
    work: impl AsyncFnOnce(&crate::store::Instance) -> Result<(T, String), ApiError>,
) -> Result<T, Response> {
    let caller = caller(state, jar).await?;
    let owner = super::portal::owner(state, jar);
    if let Some(SessionOwner::Portal { read_only: true, .. }) = &owner {
        return Err(super::portal::read_only_page());
    }
    let done = async {
        let instance = caller.instance(state, name).await?;
        let (made, target) = work(&instance).await?;
        let actor = match &owner {
            Some(SessionOwner::Portal { link, .. }) => format!("instance:{} (portal {link})", instance.name),
            _ => audit::actor(&caller, audit::Via::Dashboard),
        };
        audit::record(state, actor, origin, action, Some(instance.id), Some(target)).await;
        Ok(made)
    }
    .await;
    done.map_err(failure)
}

/// The signed-in caller, or a redirect to the sign-in page.
pub(super) async fn caller(state: &AppState, jar: &CookieJar) -> Result<Caller, Response> {
    caller_at(state, jar, None).await
}

/// [`caller`] for a page someone may have been sent to: signing in brings them back to it.
pub(super) async fn caller_at(
    state: &AppState,
    jar: &CookieJar,
    page: Option<&axum::http::Uri>,
) -> Result<Caller, Response> {
    let sign_in = || {
        let next = page.map(|uri| url::form_urlencoded::byte_serialize(uri.to_string().as_bytes()).collect::<String>());
        Redirect::to(&next.map_or("/dashboard/login".to_string(), |next| format!("/dashboard/login?next={next}")))
            .into_response()
    };
    let token = jar.get(COOKIE).map(|c| c.value().to_string()).ok_or_else(sign_in)?;
    match state.sessions.owner(&token, state.clock.now()) {
        Some(SessionOwner::Admin) => Ok(Caller::Admin),
        Some(SessionOwner::Instance(name)) => match state.store.instance_by_name(&name).await {
            Ok(Some(instance)) => Ok(Caller::Instance(Box::new(instance))),
            Ok(None) => Err(sign_in()),
            Err(error) => Err(failure(error.into())),
        },
        Some(SessionOwner::Portal { instance, link, .. }) => {
            super::portal::still_open(state, &token, &instance, &link).await.map(|i| Caller::Instance(Box::new(i)))
        }
        None => Err(sign_in()),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    signed_in: bool,
    error: Option<&'static str>,
    /// Where to go once signed in (a dashboard page), or empty.
    next: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// A page of the dashboard to return to after signing in; anything else (another site, a
/// scheme-relative `//host`) is dropped.
fn dashboard_page(next: Option<&str>) -> Option<String> {
    next.filter(|next| next.starts_with("/dashboard") && !next.starts_with("//") && !next.contains('\\'))
        .map(str::to_string)
}

pub async fn login_form(Query(query): Query<LoginQuery>) -> Response {
    let next = dashboard_page(query.next.as_deref()).unwrap_or_default();
    render(&LoginPage { signed_in: false, error: None, next })
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    next: String,
    key: String,
}

pub async fn login(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let hash = KeyHash::of(form.key.trim());
    let admin = match state.admin_key.matches(state.store.as_ref(), &hash).await {
        Ok(admin) => admin,
        Err(error) => return failure(error.into()),
    };
    let owner = if admin {
        Some(SessionOwner::Admin)
    } else {
        match state.store.instance_by_key_hash(&hash).await {
            Ok(found) => found.map(|instance| SessionOwner::Instance(instance.name)),
            Err(error) => return failure(error.into()),
        }
    };
    let Some(owner) = owner else {
        audit::record(&state, "unknown (dashboard)".to_string(), &origin, "dashboard.sign_in_refused", None, None)
            .await;
        let mut page =
            render(&LoginPage { signed_in: false, error: Some("That key is not valid."), next: form.next.clone() });
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    };
    let (actor, instance) = match &owner {
        SessionOwner::Admin => ("admin (dashboard)".to_string(), None),
        SessionOwner::Instance(name) | SessionOwner::Portal { instance: name, .. } => {
            (format!("instance:{name} (dashboard)"), Some(name.clone()))
        }
    };
    let instance_id = match &instance {
        Some(name) => state.store.instance_by_name(name).await.ok().flatten().map(|i| i.id),
        None => None,
    };
    audit::record(&state, actor, &origin, "dashboard.sign_in", instance_id, instance).await;
    let token = state.sessions.open(owner, state.clock.now());
    let cookie = Cookie::build((COOKIE, token))
        .http_only(true)
        .secure(state.tls)
        .same_site(SameSite::Strict)
        .path("/dashboard")
        .build();
    let next = dashboard_page(Some(&form.next)).unwrap_or_else(|| "/dashboard".to_string());
    (jar.add(cookie), Redirect::to(&next)).into_response()
}

pub async fn logout(State(state): State<AppState>, jar: CookieJar) -> Response {
    if let Some(cookie) = jar.get(COOKIE) {
        state.sessions.close(cookie.value());
    }
    let expired = Cookie::build((COOKIE, "")).path("/dashboard").build();
    (jar.remove(expired), Redirect::to("/dashboard/login")).into_response()
}

struct MessageRow {
    id: String,
    response_type: &'static str,
    login_id: String,
    tag: String,
    created_at: String,
    statuses: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "instance.html")]
struct InstancePage {
    signed_in: bool,
    name: String,
    mode: &'static str,
    endpoints: Vec<super::endpoints::EndpointRow>,
    /// The ledger's chain head: (seq, hash), or `None` before the first attempt.
    ledger: Option<(u64, String)>,
    login_id: String,
    tag: String,
    request_id: String,
    since: String,
    until: String,
    type_options: Vec<(&'static str, bool)>,
    status_options: Vec<(&'static str, bool)>,
    messages: Vec<MessageRow>,
    /// The query of the next (older) page, if there is one.
    older: Option<String>,
    /// The instance's portal links (`None` in a portal session, which manages none).
    portal_links: Option<Vec<super::portal::LinkRow>>,
    /// What a portal session is told of its link.
    portal_note: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct MessageQuery {
    login_id: Option<String>,
    tag: Option<String>,
    request_id: Option<String>,
    response_type: Option<String>,
    status: Option<String>,
    /// Received at or after this (RFC 3339).
    since: Option<String>,
    /// Received at or before this (RFC 3339).
    until: Option<String>,
    /// Only messages older than this one (the previous page's last).
    before: Option<String>,
}

pub async fn instance(
    State(state): State<AppState>,
    uri: axum::extract::OriginalUri,
    jar: CookieJar,
    Path(name): Path<String>,
    Query(query): Query<MessageQuery>,
) -> Response {
    let caller = match caller_at(&state, &jar, Some(&uri.0)).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match instance_page(&state, &jar, caller, name, query).await {
        Ok(page) => render(&page),
        Err(error) => failure(error),
    }
}

async fn instance_page(
    state: &AppState,
    jar: &CookieJar,
    caller: Caller,
    name: String,
    query: MessageQuery,
) -> Result<InstancePage, ApiError> {
    let instance = caller.instance(state, &name).await?;
    let status = query.status.as_deref().and_then(DeliveryStatus::parse);
    let given = |text: Option<String>| text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let (login_id, tag, request_id) = (given(query.login_id), given(query.tag), given(query.request_id));
    let response_type = given(query.response_type).and_then(|t| MessageType::parse(&t));
    let (since_text, until_text) = (given(query.since), given(query.until));
    let parse_time = |name: &str, text: &Option<String>| {
        text.as_deref()
            .map(|text| {
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| ApiError::validation(name, "must be an RFC 3339 time, e.g. 2026-11-29T14:00:00Z"))
            })
            .transpose()
    };
    let (since, until) = (parse_time("since", &since_text)?, parse_time("until", &until_text)?);
    let filter = MessageFilter {
        login_id: login_id.clone(),
        tag: tag.clone(),
        request_id: request_id.clone(),
        since,
        until,
        response_type,
        status,
        before: given(query.before).and_then(|id| MessageId::parse(&id).ok()),
        limit: PAGE_SIZE + 1,
    };
    let mut found = state.store.list_messages(instance.id, &filter).await?;
    let older = (found.len() > PAGE_SIZE as usize).then(|| {
        found.truncate(PAGE_SIZE as usize);
        found.last().map(|m| m.id.to_string())
    });
    // The next page keeps the same search.
    let search: Vec<(&str, String)> = [
        ("login_id", login_id.clone()),
        ("tag", tag.clone()),
        ("request_id", request_id.clone()),
        ("response_type", response_type.map(|t| t.as_str().to_string())),
        ("status", status.map(|s| s.as_str().to_string())),
        ("since", since_text.clone()),
        ("until", until_text.clone()),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| (key, value)))
    .collect();
    let older = older.flatten().map(|before| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(search.iter().map(|(k, v)| (*k, v.as_str())));
        query.append_pair("before", &before);
        format!("?{}", query.finish())
    });
    let mut messages = Vec::new();
    for summary in found {
        messages.push(MessageRow {
            id: summary.id.to_string(),
            response_type: summary.response_type.as_str(),
            login_id: summary.login_id.unwrap_or_default(),
            tag: summary.tag.unwrap_or_default(),
            created_at: time(summary.created_at),
            statuses: summary.delivery_statuses.iter().map(|s| s.as_str()).collect(),
        });
    }
    let now = state.clock.now();
    let failing: std::collections::HashMap<_, _> =
        state.store.failing_endpoints(Some(instance.id)).await?.into_iter().collect();
    let health: std::collections::HashMap<_, _> =
        state.store.endpoint_health(Some(instance.id), now).await?.into_iter().collect();
    let endpoints = state
        .store
        .list_endpoints(instance.id)
        .await?
        .into_iter()
        .map(|e| {
            let (failing, health) = (failing.get(&e.id), health.get(&e.id));
            super::endpoints::row(e, failing, health, now)
        })
        .collect();
    let status_options = ["pending", "delivered", "failed", "cancelled"]
        .into_iter()
        .map(|s| (s, status.map(|x| x.as_str()) == Some(s)))
        .collect();
    let ledger = state.store.ledger_head(instance.id).await?.map(|head| (head.seq, head.hash));
    let portal_links = super::portal::rows(state, jar, instance.id).await?;
    Ok(InstancePage {
        portal_links,
        portal_note: super::portal::note(state, jar),
        signed_in: true,
        ledger,
        mode: instance.mode.as_str(),
        name: instance.name,
        endpoints,
        login_id: login_id.unwrap_or_default(),
        tag: tag.unwrap_or_default(),
        request_id: request_id.unwrap_or_default(),
        since: since_text.unwrap_or_default(),
        until: until_text.unwrap_or_default(),
        type_options: MessageType::all().map(|t| (t.as_str(), Some(t) == response_type)).collect(),
        status_options,
        messages,
        older,
    })
}

struct AttemptRow {
    number: u32,
    started_at: String,
    latency_ms: u64,
    status: String,
    error: String,
    excerpt: String,
}

struct DeliveryRow {
    id: String,
    endpoint_id: String,
    status: &'static str,
    attempts_made: u32,
    next_attempt_at: Option<String>,
    /// A later round to the same endpoint took its place.
    superseded: bool,
    attempts: Vec<AttemptRow>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    signed_in: bool,
    name: String,
    id: String,
    response_type: &'static str,
    login_id: String,
    request_id: String,
    tag: String,
    created_at: String,
    deliveries: Vec<DeliveryRow>,
    payload: String,
    /// After a redelivery: how many new deliveries it made.
    redelivered: Option<usize>,
}

#[derive(Deserialize)]
pub struct MessagePageQuery {
    redelivered: Option<usize>,
}

pub async fn message(
    State(state): State<AppState>,
    uri: axum::extract::OriginalUri,
    jar: CookieJar,
    Path((name, msg)): Path<(String, String)>,
    Query(query): Query<MessagePageQuery>,
) -> Response {
    let caller = match caller_at(&state, &jar, Some(&uri.0)).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match message_page(&state, caller, name, msg).await {
        Ok(page) => render(&MessagePage { redelivered: query.redelivered, ..page }),
        Err(error) => failure(error),
    }
}

async fn message_page(state: &AppState, caller: Caller, name: String, msg: String) -> Result<MessagePage, ApiError> {
    let instance = caller.instance(state, &name).await?;
    let id = MessageId::parse(&msg).map_err(|_| ApiError::NotFound("message"))?;
    let detail = state.store.message(instance.id, &id).await?.ok_or(ApiError::NotFound("message"))?;
    let payload = serde_json::from_slice::<serde_json::Value>(&detail.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&detail.payload).into_owned());
    let summary = detail.summary;
    Ok(MessagePage {
        signed_in: true,
        name: instance.name,
        id: summary.id.to_string(),
        response_type: summary.response_type.as_str(),
        login_id: summary.login_id.unwrap_or_default(),
        request_id: summary.request_id.unwrap_or_default(),
        tag: summary.tag.unwrap_or_default(),
        created_at: time(summary.created_at),
        deliveries: detail
            .deliveries
            .into_iter()
            .map(|d| DeliveryRow {
                id: d.id.to_string(),
                endpoint_id: d.endpoint_id.to_string(),
                status: d.status.as_str(),
                attempts_made: d.attempts_made,
                next_attempt_at: d.next_attempt_at.map(time),
                superseded: d.superseded,
                attempts: d
                    .attempts
                    .into_iter()
                    .map(|a| AttemptRow {
                        number: a.attempt_number,
                        started_at: time(a.started_at),
                        latency_ms: a.latency_ms,
                        status: a.status_code.map_or("-".to_string(), |c| c.to_string()),
                        error: match (a.error_class, a.error_detail) {
                            (Some(class), Some(detail)) => format!("{class}: {detail}"),
                            (class, _) => class.map(|c| c.to_string()).unwrap_or_default(),
                        },
                        excerpt: a.response_excerpt.unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
        payload,
        redelivered: None,
    })
}
