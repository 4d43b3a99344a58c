//! The HTTP API of `finhook serve`: routing, shared state, and one module per resource.
//! Handlers stay thin: extract, authorize, call one store or service function, map.

mod auth;
mod endpoints;
mod instances;
pub(crate) mod json;
mod messages;
mod openapi;
mod problem;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use finhook_core::flinks::ParseLimits;
use finhook_core::secret::KeyHash;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::delivery::target::TargetPolicy;
use crate::metrics::Metrics;
use crate::sandbox::flow::Sandbox;
use crate::store::Store;

pub use auth::Caller;
pub(crate) use json::ApiJson;
pub(crate) use problem::ErrorChain;
pub use problem::{ApiError, Problem};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub targets: Arc<TargetPolicy>,
    /// The hash of the admin key; the key itself is never held.
    pub admin_key_hash: KeyHash,
    /// Wakes the delivery worker when new deliveries are scheduled.
    pub wake: Arc<Notify>,
    pub max_body_bytes: usize,
    pub parse_limits: ParseLimits,
    pub sandbox: Sandbox,
    pub metrics: Arc<Metrics>,
    pub sessions: Arc<crate::dashboard::Sessions>,
}

pub fn router(state: AppState) -> Router {
    let instance = "/v1/instances/{name}";
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/instances", post(instances::create).get(instances::list))
        .route(instance, get(instances::show).patch(instances::update))
        .route(&format!("{instance}/rotate-key"), post(instances::rotate_key))
        .route(&format!("{instance}/sandbox/trigger"), post(crate::sandbox::trigger::trigger))
        .route(&format!("{instance}/endpoints"), post(endpoints::create).get(endpoints::list))
        .route(
            &format!("{instance}/endpoints/{{id}}"),
            get(endpoints::show).patch(endpoints::update).delete(endpoints::delete),
        )
        .route(&format!("{instance}/endpoints/{{id}}/rotate-secret"), post(endpoints::rotate_secret))
        .route(&format!("{instance}/callbacks"), post(messages::ingest))
        .route(&format!("{instance}/messages"), get(messages::list))
        .route(&format!("{instance}/messages/{{msg}}"), get(messages::show))
        .route(&format!("{instance}/messages/{{msg}}/redeliver"), post(messages::redeliver))
        .route(&format!("{instance}/logins/{{login_id}}"), get(messages::login))
        .merge(crate::sandbox::api::routes())
        .merge(crate::dashboard::routes())
        .fallback(|| async { ApiError::NotFound("route") })
        .with_state(state)
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the store answers", body = String), (status = 500, body = Problem)))]
pub(crate) async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    state.store.ping().await?;
    Ok("ok")
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
pub(crate) async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let stats = state.store.stats(state.clock.now()).await?;
    let text = state
        .metrics
        .render(&stats, state.clock.now())
        .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
        .into_response())
}
