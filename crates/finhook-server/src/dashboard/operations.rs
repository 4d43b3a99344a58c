//! The dashboard's operator pages beyond browsing: bulk recovery (a form on the instance
//! page starts a job; its page shows the progress, refreshing itself, no script, while it
//! runs) and the audit log.

use askama::Template;
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use finhook_core::ids::{EndpointId, MessageId, RecoveryId};
use serde::Deserialize;

use super::pages::{act, caller_at, failure, render, time};
use crate::app::AppState;
use crate::http::audit::Origin;
use crate::http::{instance_endpoint, ApiError};
use crate::store::recovery::RecoveryStatus;

#[derive(Deserialize)]
pub struct RecoverForm {
    hours: u32,
    endpoint_id: String,
}

pub async fn start(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path(name): Path<String>,
    Form(form): Form<RecoverForm>,
) -> Response {
    let result = act(&state, &origin, &jar, &name, "recovery.start", async |instance| {
        let endpoint = match form.endpoint_id.trim() {
            "" => None,
            id => Some(instance_endpoint(&state, instance.id, id).await?.id),
        };
        let now = state.clock.now();
        let since = now - chrono::Duration::hours(i64::from(form.hours.clamp(1, 24 * 90)));
        let recovery = state.recoveries.start(instance.id, endpoint.as_ref(), since, now).await?;
        Ok((recovery.id.clone(), recovery.id.to_string()))
    })
    .await;
    match result {
        Ok(id) => Redirect::to(&format!("/dashboard/instances/{name}/recover/{id}")).into_response(),
        Err(page) => page,
    }
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage {
    signed_in: bool,
    name: String,
    id: String,
    status: &'static str,
    running: bool,
    total: u64,
    resent: u64,
    since: String,
    until: String,
    endpoint: String,
    created_at: String,
    finished_at: String,
    error: String,
}

pub async fn show(
    State(state): State<AppState>,
    uri: axum::extract::OriginalUri,
    jar: CookieJar,
    Path((name, id)): Path<(String, String)>,
) -> Response {
    let caller = match caller_at(&state, &jar, Some(&uri.0)).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let result: Result<RecoveryPage, ApiError> = async {
        let instance = caller.instance(&state, &name).await?;
        let id = RecoveryId::parse(&id).map_err(|_| ApiError::NotFound("recovery"))?;
        let job = state.store.recovery(instance.id, &id).await?.ok_or(ApiError::NotFound("recovery"))?;
        Ok(RecoveryPage {
            signed_in: true,
            name: instance.name,
            id: job.id.to_string(),
            status: job.status.as_str(),
            running: job.status == RecoveryStatus::Running,
            total: job.total,
            resent: job.resent,
            since: time(job.since),
            until: time(job.until),
            endpoint: job.endpoint_id.map_or("every endpoint".to_string(), |id| id.to_string()),
            created_at: time(job.created_at),
            finished_at: job.finished_at.map(time).unwrap_or_default(),
            error: job.error.unwrap_or_default(),
        })
    }
    .await;
    match result {
        Ok(page) => render(&page),
        Err(error) => failure(error),
    }
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    instance: String,
    target: String,
    remote_addr: String,
    request_id: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    signed_in: bool,
    /// Empty for the admin (every instance), else the instance's name.
    scope: String,
    entries: Vec<AuditRow>,
}

/// The audit log page: the last 100 actions the caller may see.
pub async fn audit(State(state): State<AppState>, uri: axum::extract::OriginalUri, jar: CookieJar) -> Response {
    let caller = match caller_at(&state, &jar, Some(&uri.0)).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let (scope, instance) = match &caller {
        crate::http::Caller::Admin => (String::new(), None),
        crate::http::Caller::Instance(own) => (own.name.clone(), Some(own.id)),
    };
    match state.store.audit_entries(instance, None, 100).await {
        Ok(entries) => render(&AuditPage {
            signed_in: true,
            scope,
            entries: entries
                .into_iter()
                .map(|e| AuditRow {
                    at: time(e.at),
                    actor: e.actor,
                    action: e.action,
                    instance: e.instance.unwrap_or_default(),
                    target: e.target.unwrap_or_default(),
                    remote_addr: e.remote_addr.unwrap_or_default(),
                    request_id: e.request_id.unwrap_or_default(),
                })
                .collect(),
        }),
        Err(error) => failure(error.into()),
    }
}

#[derive(Deserialize)]
pub struct RedeliverTo {
    #[serde(default)]
    endpoint_id: String,
}

#[derive(Template)]
#[template(path = "redeliver.html")]
struct RedeliverPage {
    signed_in: bool,
    name: String,
    id: String,
    response_type: &'static str,
    /// Empty: every endpoint.
    endpoint_id: String,
    endpoint_url: String,
}

/// The confirmation before a redelivery, to every endpoint or one.
pub async fn confirm_redeliver(
    State(state): State<AppState>,
    uri: axum::extract::OriginalUri,
    jar: CookieJar,
    Path((name, msg)): Path<(String, String)>,
    axum::extract::Query(to): axum::extract::Query<RedeliverTo>,
) -> Response {
    let caller = match caller_at(&state, &jar, Some(&uri.0)).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    let result: Result<RedeliverPage, ApiError> = async {
        let instance = caller.instance(&state, &name).await?;
        let id = MessageId::parse(&msg).map_err(|_| ApiError::NotFound("message"))?;
        let message = state.store.message(instance.id, &id).await?.ok_or(ApiError::NotFound("message"))?;
        let endpoint_url = match to.endpoint_id.trim() {
            "" => String::new(),
            endpoint => instance_endpoint(&state, instance.id, endpoint).await?.url,
        };
        Ok(RedeliverPage {
            signed_in: true,
            name: instance.name,
            id: id.to_string(),
            response_type: message.summary.response_type.as_str(),
            endpoint_id: to.endpoint_id.trim().to_string(),
            endpoint_url,
        })
    }
    .await;
    match result {
        Ok(page) => render(&page),
        Err(error) => failure(error),
    }
}

/// A confirmed redelivery; back to the message, which says how many deliveries it made.
pub async fn redeliver(
    State(state): State<AppState>,
    origin: Origin,
    jar: CookieJar,
    Path((name, msg)): Path<(String, String)>,
    Form(to): Form<RedeliverTo>,
) -> Response {
    let result = act(&state, &origin, &jar, &name, "message.redeliver", async |instance| {
        let id = MessageId::parse(&msg).map_err(|_| ApiError::NotFound("message"))?;
        let endpoint = match to.endpoint_id.trim() {
            "" => None,
            endpoint => Some(EndpointId::parse(endpoint).map_err(|_| ApiError::NotFound("endpoint"))?),
        };
        let made = state
            .store
            .redeliver(instance.id, &id, endpoint.as_ref(), state.clock.now())
            .await?
            .ok_or(ApiError::NotFound("message or endpoint"))?;
        state.dispatch.rescan();
        Ok((made.len(), id.to_string()))
    })
    .await;
    match result {
        Ok(count) => {
            Redirect::to(&format!("/dashboard/instances/{name}/messages/{msg}?redelivered={count}")).into_response()
        }
        Err(page) => page,
    }
}
