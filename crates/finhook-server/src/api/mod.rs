//! The HTTP API of `finhook serve` (`/v1/...`, `/healthz`, `/metrics`, `/openapi.json`):
//! one module per resource. Handlers stay thin: extract, authorize, call one store or
//! service function, map. The routes meet the other areas' in [`crate::app`].

pub(crate) mod activity;
mod admin_key;
mod audit;
pub(crate) mod endpoints;
mod feed;
mod instances;
mod ledger;
mod messages;
mod openapi;
pub(crate) mod portal;
mod recover;
mod signing_keys;

use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;
use crate::http::ApiError;

/// The API's routes.
pub fn routes() -> Router<AppState> {
    let instance = "/v1/instances/{name}";
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/admin-key/rotate", post(admin_key::rotate))
        .route("/v1/audit", get(audit::list))
        .route("/v1/instances", post(instances::create).get(instances::list))
        .route(instance, get(instances::show).patch(instances::update))
        .route(&format!("{instance}/rotate-key"), post(instances::rotate_key))
        .route(&format!("{instance}/.well-known/jwks.json"), get(signing_keys::jwks))
        .route(&format!("{instance}/rotate-signing-key"), post(signing_keys::rotate))
        .route(&format!("{instance}/ledger"), get(ledger::export))
        .route(&format!("{instance}/endpoints"), post(endpoints::create).get(endpoints::list))
        .route(
            &format!("{instance}/endpoints/{{id}}"),
            get(endpoints::show).patch(endpoints::update).delete(endpoints::delete),
        )
        .route(&format!("{instance}/endpoints/{{id}}/rotate-secret"), post(endpoints::rotate_secret))
        .route(&format!("{instance}/endpoints/{{id}}/test"), post(activity::test))
        .route(&format!("{instance}/endpoints/{{id}}/probe"), post(activity::probe))
        .route(&format!("{instance}/endpoints/{{id}}/deliveries"), get(activity::deliveries))
        .route(&format!("{instance}/callbacks"), post(messages::ingest))
        .route(&format!("{instance}/portal-link"), post(portal::create))
        .route(&format!("{instance}/portal-links"), get(portal::list))
        .route(&format!("{instance}/portal-links/{{id}}"), axum::routing::delete(portal::revoke))
        .route(&format!("{instance}/feed"), get(feed::read))
        .route(&format!("{instance}/feed/ack"), post(feed::acknowledge))
        .route(&format!("{instance}/messages"), get(messages::list))
        .route(&format!("{instance}/messages/{{msg}}"), get(messages::show))
        .route(&format!("{instance}/messages/{{msg}}/redeliver"), post(messages::redeliver))
        .route(&format!("{instance}/logins/{{login_id}}"), get(messages::login))
        .route(&format!("{instance}/recover"), post(recover::start))
        .route(&format!("{instance}/recover/{{id}}"), get(recover::show))
}

#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", summary = "Whether this node can take callbacks now", tag = "operations", responses((status = 200, description = "the store answers", body = String), (status = 503, description = "the store cannot commit a write", body = crate::http::Problem), (status = 507, description = "the store's disk is full", body = crate::http::Problem)))]
pub(crate) async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    state.store.ping().await?;
    Ok("ok")
}

#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", summary = "Prometheus metrics", tag = "operations", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String)))]
pub(crate) async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let stats = state.store.stats(state.clock.now()).await?;
    let text = state
        .metrics
        .render(&stats, state.clock.now())
        .map_err(|source| ApiError::Internal { what: "render the metrics", source: source.into() })?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
        .into_response())
}
