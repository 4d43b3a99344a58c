//! The operators' web dashboard: server-rendered pages (askama templates, escaped by
//! default) over the same store the API reads. Sign-in takes the admin key or an instance
//! key and opens a session held in memory: an HttpOnly, SameSite=Strict cookie carries a
//! random token, never the key.

mod endpoints;
mod feed;
mod operations;
mod overview;
mod pages;
mod portal;
mod session;

use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;
pub use session::Sessions;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(overview::overview))
        .route("/dashboard/login", get(pages::login_form).post(pages::login))
        .route("/dashboard/logout", post(pages::logout))
        .route("/dashboard/instances/{name}", get(pages::instance))
        .route("/dashboard/instances/{name}/messages/{msg}", get(pages::message))
        .route("/dashboard/instances/{name}/endpoints", post(endpoints::create))
        .route("/dashboard/instances/{name}/endpoints/{id}", get(endpoints::show))
        .route("/dashboard/instances/{name}/endpoints/{id}/enabled", post(endpoints::set_enabled))
        .route("/dashboard/instances/{name}/endpoints/{id}/edit", post(endpoints::edit))
        .route("/dashboard/instances/{name}/endpoints/{id}/rotate-secret", post(endpoints::rotate_secret))
        .route("/dashboard/instances/{name}/endpoints/{id}/test", post(endpoints::test))
        .route("/dashboard/instances/{name}/endpoints/{id}/probe", post(endpoints::probe))
        .route(
            "/dashboard/instances/{name}/messages/{msg}/redeliver",
            get(operations::confirm_redeliver).post(operations::redeliver),
        )
        .route("/dashboard/instances/{name}/recover", post(operations::start))
        .route("/dashboard/audit", get(operations::audit))
        .route("/dashboard/instances/{name}/feed", get(feed::show))
        .route("/dashboard/instances/{name}/portal-links", post(portal::create))
        .route("/dashboard/instances/{name}/portal-links/{id}/revoke", post(portal::revoke))
        .route("/portal/{token}", get(portal::open))
        .route("/dashboard/instances/{name}/recover/{id}", get(operations::show))
}
