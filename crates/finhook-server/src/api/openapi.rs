//! `GET /openapi.json`: the OpenAPI 3 document of the management API, generated from the
//! handlers' own annotations so it cannot drift from the routes.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{activity, admin_key, audit, endpoints, feed, instances, ledger, messages, portal, recover, signing_keys};
use crate::sandbox::api as sandbox_api;
use crate::sandbox::trigger;

#[derive(OpenApi)]
#[openapi(
    info(title = "finhook", description = "Durable, signed, Flinks-compatible financial webhooks: the management and ingest API of `finhook serve`."),
    paths(
        super::healthz,
        super::metrics,
        admin_key::rotate,
        audit::list,
        recover::start,
        recover::show,
        instances::create,
        instances::list,
        instances::show,
        instances::update,
        instances::rotate_key,
        endpoints::create,
        endpoints::list,
        endpoints::show,
        endpoints::update,
        endpoints::delete,
        endpoints::rotate_secret,
        activity::test,
        activity::deliveries,
        activity::probe,
        signing_keys::jwks,
        signing_keys::rotate,
        ledger::export,
        messages::ingest,
        messages::list,
        messages::show,
        messages::redeliver,
        messages::login,
        feed::read,
        feed::acknowledge,
        portal::create,
        portal::list,
        portal::revoke,
        trigger::trigger,
        sandbox_api::generate_authorize_token,
        sandbox_api::authorize,
        sandbox_api::get_accounts_detail,
        sandbox_api::get_accounts_detail_async_get,
        sandbox_api::get_accounts_detail_async_post,
        sandbox_api::get_accounts_summary,
        sandbox_api::connect,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// Every operation takes `Authorization: Bearer <key>` (the admin key or an instance key).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
