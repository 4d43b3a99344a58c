//! The dashboard's endpoint page: an endpoint's settings, health (the last hour and day),
//! newest deliveries, and what an operator does to it: enable or disable it, rotate its
//! secret (shown once), send it a test callback. Also the endpoint rows of the instance
//! page, so both say the same in the same words.

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, Utc};
use finhook_core::ids::MessageId;
use serde::Deserialize;

use super::pages::{act, caller_at, failure, render, time};
use crate::app::AppState;
use crate::http::audit::Origin;
use crate::http::{instance_endpoint, ApiError, Caller};
use crate::store::events::Failing;
use crate::store::health::{EndpointHealth, Window};
use crate::store::{DeliveryOrder, Endpoint, EndpointPatch, Instance};
use crate::test_callback;

/// Deliveries per page of the endpoint page.
const PAGE: u32 = 20;

pub(super) struct EndpointRow {
    pub(super) id: String,
    pub(super) url: String,
    /// Enabled, failing (and how), or disabled (and by whom).
    pub(super) state: String,
    /// Failing, or disabled by finhook.
    pub(super) state_flagged: bool,
    /// The last hour's success rate and latency, and the backlog.
    pub(super) health: String,
    pub(super) types: String,
    pub(super) retry: String,
    pub(super) success: &'static str,
    pub(super) signing: &'static str,
    /// Subject and expiry, or "none".
    pub(super) client_certificate: String,
    /// Expiring within 14 days (or expired).
    pub(super) client_certificate_flagged: bool,
    /// What the certificate watch last saw at the endpoint's server.
    pub(super) certificate: String,
    /// Not valid, not checked yet, or expiring within 14 days.
    pub(super) certificate_flagged: bool,
}

/// Whether an endpoint takes deliveries, and how they go, in a few words.
fn state_text(endpoint: &crate::store::Endpoint, failing: Option<&Failing>) -> String {
    if let Some(at) = endpoint.auto_disabled_at {
        return format!("disabled by finhook at {} (every attempt failed too long)", time(at));
    }
    if !endpoint.enabled {
        return "disabled".to_string();
    }
    match failing {
        Some(run) => {
            let last = match (run.last_status_code, run.last_error_class) {
                (Some(status), _) => status.to_string(),
                (None, Some(class)) => class.as_str().to_string(),
                (None, None) => "unknown".to_string(),
            };
            let (count, plural) = (run.failed_attempts_in_row, if run.failed_attempts_in_row == 1 { "" } else { "s" });
            format!("failing: {count} attempt{plural} in a row since {} (last: {last})", time(run.since))
        }
        None => "enabled".to_string(),
    }
}

/// The last hour of an endpoint's attempts and its backlog, in a few words.
fn health_text(health: &crate::store::health::EndpointHealth) -> String {
    let hour = &health.last_hour;
    let attempts = match (hour.success_rate, hour.latency_p99_ms) {
        (Some(rate), Some(p99)) => {
            format!("{:.1} % of {} attempts succeeded, p99 ≤ {p99} ms", rate * 100.0, hour.attempts)
        }
        _ => "no attempts".to_string(),
    };
    format!("{attempts}; backlog {}", health.backlog)
}

/// The server certificate of an endpoint, in a few words.
fn certificate_text(report: Option<&crate::store::certificate::CertificateReport>, now: DateTime<Utc>) -> String {
    let Some(report) = report else { return "not watched (no TLS)".to_string() };
    let expiry = report.expires_at.map(|end| {
        let days = (end - now).num_days();
        format!("expires {} (in {days} days)", end.format("%Y-%m-%d"))
    });
    match (&report.problem, expiry) {
        (Some(problem), _) if !report.reached => format!("not checked yet: {problem}"),
        (Some(problem), _) => format!("not valid: {problem}"),
        (None, Some(expiry)) => format!("valid, {expiry}"),
        (None, None) => "valid".to_string(),
    }
}

/// The row of `endpoint` in the instance page's table (and the endpoint page's summary).
pub(super) fn row(
    e: Endpoint,
    failing: Option<&Failing>,
    health: Option<&EndpointHealth>,
    now: DateTime<Utc>,
) -> EndpointRow {
    EndpointRow {
        state: state_text(&e, failing),
        state_flagged: e.auto_disabled_at.is_some() || (e.enabled && failing.is_some()),
        health: health.map(health_text).unwrap_or_default(),
        id: e.id.to_string(),
        url: e.url,
        types: e.event_types.map_or("all".to_string(), |t| t.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")),
        retry: format!("{} × {} s ({:?})", e.retry.max_attempts, e.retry.interval_seconds, e.retry.backoff)
            .to_lowercase(),
        success: e.success.as_str(),
        signing: e.signing.as_str(),
        client_certificate_flagged: e
            .client_certificate
            .as_ref()
            .is_some_and(|c| c.expires_at - now < crate::store::certificate::EXPIRING_WITHIN),
        client_certificate: e
            .client_certificate
            .map_or("none".to_string(), |c| format!("{}, expires {}", c.subject, c.expires_at.format("%Y-%m-%d"))),
        certificate_flagged: e.certificate.as_ref().is_some_and(|c| !c.is_valid() || c.expires_soon(now)),
        certificate: certificate_text(e.certificate.as_ref(), now),
    }
}

/// A window of attempts, in a few words.
fn window_text(window: &Window) -> String {
    match (window.success_rate, window.latency_p50_ms, window.latency_p99_ms) {
        (Some(rate), Some(p50), Some(p99)) => format!(
            "{} attempts, {:.1} % succeeded; latency p50 ≤ {p50} ms, p99 ≤ {p99} ms",
            window.attempts,
            rate * 100.0
        ),
        _ => "no attempts".to_string(),
    }
}

struct DeliveryRow {
    message_id: String,
    response_type: &'static str,
    status: &'static str,
    superseded: bool,
    attempts_made: u32,
    /// The last attempt: when, its answer (or error) and latency; empty before the first.
    last_attempt: String,
    next_attempt_at: String,
}

#[derive(Template)]
#[template(path = "endpoint.html")]
struct EndpointPage {
    signed_in: bool,
    name: String,
    endpoint: EndpointRow,
    description: String,
    enabled: bool,
    last_hour: String,
    last_day: String,
    last_attempt: String,
    failing: String,
    backlog: String,
    /// The callback type a test sends, or `None` when the endpoint takes only events.
    test_type: Option<&'static str>,
    deliveries: Vec<DeliveryRow>,
    /// The query of the next (older) page, if there is one.
    older: Option<String>,
    /// The newest page (no `before`).
    first_page: bool,
    /// What the last action did, in a sentence.
    notice: Option<&'static str>,
    /// The edit form's values: the URL, and the types it takes, comma-separated (empty: all).
    url: String,
    types: String,
    /// Whether it takes one LoginId's callbacks one at a time.
    ordered: bool,
}

#[derive(Deserialize)]
pub struct EndpointQuery {
    before: Option<String>,
    done: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    uri: axum::extract::OriginalUri,
    jar: CookieJar,
    Path((name, id)): Path<(String, String)>,
    Query(query): Query<EndpointQuery>,
) -> Response {
    let caller = match caller_at(&state, &jar, Some(&uri.0)).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match endpoint_page(&state, caller, &name, &id, query).await {
        Ok(page) => render(&page),
        Err(error) => failure(error),
    }
}

async fn endpoint_page(
    state: &AppState,
    caller: Caller,
    name: &str,
    id: &str,
    query: EndpointQuery,
) -> Result<EndpointPage, ApiError> {
    let instance = caller.instance(state, name).await?;
    let endpoint = instance_endpoint(state, instance.id, id).await?;
    let now = state.clock.now();
    let failing = state.store.failing_endpoints(Some(instance.id)).await?.into_iter().find(|(e, _)| *e == endpoint.id);
    let health =
        state.store.endpoint_health(Some(instance.id), now).await?.into_iter().find(|(e, _)| *e == endpoint.id);
    let (failing, health) = (failing.map(|(_, f)| f), health.map(|(_, h)| h).unwrap_or_default());
    let before = query.before.as_deref().and_then(|b| MessageId::parse(b).ok());
    let page = state.store.recent_deliveries(instance.id, &endpoint.id, before.as_ref(), PAGE).await?;
    let next = page.next;
    let deliveries = page
        .deliveries
        .into_iter()
        .map(|r| {
            let last_attempt = r.delivery.attempts.last().map_or(String::new(), |a| {
                let answer = match (a.status_code, a.error_class) {
                    (Some(code), _) => code.to_string(),
                    (None, Some(class)) => class.to_string(),
                    (None, None) => "no answer".to_string(),
                };
                format!("#{} at {}: {answer} in {} ms", a.attempt_number, time(a.started_at), a.latency_ms)
            });
            DeliveryRow {
                message_id: r.message_id.to_string(),
                response_type: r.response_type.as_str(),
                status: r.delivery.status.as_str(),
                superseded: r.delivery.superseded,
                attempts_made: r.delivery.attempts_made,
                last_attempt,
                next_attempt_at: r.delivery.next_attempt_at.map(time).unwrap_or_default(),
            }
        })
        .collect();
    let last_attempt = match health.last_attempt_at {
        Some(at) => {
            let answer = match (health.last_status_code, health.last_error_class) {
                (Some(code), _) => code.to_string(),
                (None, Some(class)) => class.to_string(),
                (None, None) => "no answer".to_string(),
            };
            format!("{} ({answer})", time(at))
        }
        None => "none in the last day".to_string(),
    };
    let failing_text = match (health.consecutive_failures, health.failing_since) {
        (0, _) => "no".to_string(),
        (count, Some(since)) => format!("{count} attempts in a row since {}", time(since)),
        (count, None) => format!("{count} attempts in a row"),
    };
    let backlog = match health.oldest_due_at {
        Some(due) => format!("{} waiting; the oldest due since {}", health.backlog, time(due)),
        None => format!("{} waiting, none overdue", health.backlog),
    };
    let notice = match query.done.as_deref() {
        Some("enabled") => Some("Enabled: its pending deliveries go out now."),
        Some("disabled") => Some("Disabled: its deliveries wait, nothing is sent to it until it is enabled."),
        Some("edited") => Some("Saved: callbacks from now on go to it as it is now."),
        _ => None,
    };
    let types = endpoint
        .event_types
        .as_ref()
        .map_or_else(String::new, |types| types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "));
    // A page looks at a window of the instance's messages; an empty one may still lead on.
    Ok(EndpointPage {
        signed_in: true,
        url: endpoint.url.clone(),
        types,
        ordered: endpoint.ordering == DeliveryOrder::LoginId,
        name: instance.name,
        description: endpoint.description.clone().unwrap_or_default(),
        enabled: endpoint.enabled,
        test_type: test_callback::test_type(&endpoint).map(|t| t.as_str()),
        endpoint: row(endpoint, failing.as_ref(), Some(&health), now),
        last_hour: window_text(&health.last_hour),
        last_day: window_text(&health.last_day),
        last_attempt,
        failing: failing_text,
        backlog,
        deliveries,
        older: next.map(|id| format!("?before={id}")),
        first_page: before.is_none(),
        notice,
    })
}

/// [`act`] on endpoint `id` of instance `name`, recorded with the endpoint as its target.
async fn act_on_endpoint<T>(
    state: &AppState,
    origin: &Origin,
    jar: &CookieJar,
    (name, id): (&str, &str),
    action: &'static str,
    work: impl AsyncFnOnce(&Instance, Endpoint) -> Result<T, ApiError>,
) -> Result<T, Response> {
    act(state, origin, jar, name, action, async |instance| {
        let endpoint = instance_endpoint(state, instance.id, id).await?;
        let target = endpoint.id.to_string();
        Ok((work(instance, endpoint).await?, target))
    })
    .await
}

#[derive(Deserialize)]
pub struct EnabledForm {
    enabled: bool,
}

/// Enables or disables the endpoint, then shows its page again.
pub async fn set_enabled(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path((name, id)): Path<(String, String)>,
    Form(form): Form<EnabledForm>,
) -> Response {
    let (action, done) = if form.enabled { ("endpoint.enable", "enabled") } else { ("endpoint.disable", "disabled") };
    let result = act_on_endpoint(&state, &origin, &jar, (&name, &id), action, async |instance, endpoint| {
        let patch = EndpointPatch { enabled: Some(form.enabled), ..EndpointPatch::default() };
        state.store.update_endpoint(instance.id, &endpoint.id, patch, state.clock.now()).await?;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/dashboard/instances/{name}/endpoints/{id}?done={done}")).into_response(),
        Err(page) => page,
    }
}

#[derive(Deserialize)]
pub struct EditForm {
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    event_types: String,
    #[serde(default)]
    ordering: String,
}

/// Changes the endpoint's URL, description, types and ordering, checked exactly as the API's `PATCH`
/// checks them (a new URL's certificate looked at), then shows its page again.
pub async fn edit(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path((name, id)): Path<(String, String)>,
    Form(form): Form<EditForm>,
) -> Response {
    let result = act_on_endpoint(&state, &origin, &jar, (&name, &id), "endpoint.update", async |instance, endpoint| {
        let description = Some(form.description.trim().to_string()).filter(|d| !d.is_empty());
        let types = form.event_types.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
        let ordering = match form.ordering.as_str() {
            "" => endpoint.ordering,
            text => DeliveryOrder::parse(text)
                .ok_or_else(|| ApiError::validation("ordering", "must be none or login_id"))?,
        };
        let request =
            crate::api::endpoints::UpdateEndpoint::from_form(form.url.trim().to_string(), description, types, ordering);
        crate::api::endpoints::update_for(&state, instance.id, &endpoint.id, request).await?;
        Ok(())
    })
    .await;
    match result {
        Ok(()) => Redirect::to(&format!("/dashboard/instances/{name}/endpoints/{id}?done=edited")).into_response(),
        Err(page) => page,
    }
}

#[derive(Template)]
#[template(path = "secret.html")]
struct SecretPage {
    signed_in: bool,
    /// A new endpoint's first secret, not a rotation.
    created: bool,
    name: String,
    id: String,
    url: String,
    secret: String,
}

/// Gives the endpoint a new secret and shows it, once (the page is never cached).
pub async fn rotate_secret(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    let result =
        act_on_endpoint(&state, &origin, &jar, (&name, &id), "endpoint.rotate_secret", async |instance, endpoint| {
            let secret = crate::api::endpoints::rotate(&state, instance.id, &endpoint.id).await?;
            Ok(SecretPage {
                signed_in: true,
                created: false,
                name: instance.name.clone(),
                id: endpoint.id.to_string(),
                url: endpoint.url,
                secret: secret.expose().to_string(),
            })
        })
        .await;
    result.map_or_else(|page| page, |page| render(&page))
}

/// Sends the endpoint a test callback and shows its message page, where its delivery can
/// be followed.
pub async fn test(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    let result = act_on_endpoint(&state, &origin, &jar, (&name, &id), "endpoint.test", async |_, endpoint| {
        let sent = test_callback::send(state.store.as_ref(), &state.dispatch, &endpoint, state.clock.now()).await?;
        Ok(sent.message_id)
    })
    .await;
    match result {
        Ok(message) => Redirect::to(&format!("/dashboard/instances/{name}/messages/{message}")).into_response(),
        Err(page) => page,
    }
}

#[derive(Template)]
#[template(path = "probe.html")]
struct ProbePage {
    signed_in: bool,
    name: String,
    id: String,
    report: crate::probe::Report,
}

/// Probes the endpoint's receiver and shows its report card.
pub async fn probe(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    let result = act_on_endpoint(&state, &origin, &jar, (&name, &id), "endpoint.probe", async |instance, endpoint| {
        let report = crate::api::activity::run_probe(&state, &endpoint, None).await?;
        Ok(ProbePage { signed_in: true, name: instance.name.clone(), id: endpoint.id.to_string(), report })
    })
    .await;
    result.map_or_else(|page| page, |page| render(&page))
}

#[derive(Deserialize)]
pub struct NewEndpointForm {
    url: String,
    #[serde(default)]
    description: String,
    /// Comma-separated; empty for every callback.
    #[serde(default)]
    event_types: String,
}

/// Creates an endpoint from the instance page's form and shows its secret, once.
pub async fn create(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path(name): Path<String>,
    Form(form): Form<NewEndpointForm>,
) -> Response {
    let result = act(&state, &origin, &jar, &name, "endpoint.create", async |instance| {
        let description = Some(form.description.trim().to_string()).filter(|d| !d.is_empty());
        let types = form.event_types.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
        let request = crate::api::endpoints::CreateEndpoint::from_form(form.url.trim().to_string(), description, types);
        let (endpoint, secret) = crate::api::endpoints::create_for(&state, instance, request).await?;
        let target = endpoint.id.to_string();
        let page = SecretPage {
            signed_in: true,
            created: true,
            name: instance.name.clone(),
            id: endpoint.id.to_string(),
            url: endpoint.url,
            secret: secret.expose().to_string(),
        };
        Ok((page, target))
    })
    .await;
    result.map_or_else(|page| page, |page| render(&page))
}
