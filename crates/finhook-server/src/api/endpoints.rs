//! `/v1/instances/{name}/endpoints`: webhook endpoints and their secrets.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use finhook_core::events::MessageType;
use finhook_core::ids::EndpointId;
use finhook_core::retry::{Backoff, RetryPolicy};
use finhook_core::secret::EndpointSecret;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::http::audit::{self, Origin, Via};
use crate::http::json::{double_option, ApiJson};
use crate::http::{ApiError, Caller, Problem};
use crate::store::certificate::CertificateReport;
use crate::store::events::Failing;
use crate::store::health::EndpointHealth;
use crate::store::InstanceId;
use crate::store::{
    ClientCertificateInfo, ClientIdentity, DeliveryOrder, Endpoint, EndpointPatch, NewEndpoint, Signing, SuccessRule,
};

/// How long a replaced secret keeps signing after a rotation.
const ROTATION_OVERLAP: Duration = Duration::hours(24);

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    max_attempts: Option<u32>,
    interval_seconds: Option<u32>,
    backoff: Option<Backoff>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    url: String,
    description: Option<String>,
    event_types: Option<Vec<String>>,
    retry: Option<RetryRequest>,
    success: Option<SuccessRule>,
    enabled: Option<bool>,
    /// How `webhook-signature` is made: `hmac` (default) or `ed25519` (the instance's keys,
    /// published at `/v1/instances/{name}/.well-known/jwks.json`).
    signing: Option<Signing>,
    /// A client certificate presented on every attempt (mutual TLS).
    client_certificate: Option<ClientCertificateRequest>,
    /// `login_id`: the callbacks of one LoginId one at a time, in ingest order (a failing
    /// one holds back only its own LoginId's later ones); `none` (default): as each is due.
    ordering: Option<DeliveryOrder>,
    /// `false` stores the endpoint even when its server's certificate is not valid
    /// (its report still says what is wrong). Default `true`.
    verify: Option<bool>,
}

/// A client certificate for mutual TLS, in PEM: the leaf first, then any intermediates,
/// and its private key (PKCS#8, PKCS#1 or SEC1), which is sealed at rest and never shown.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificateRequest {
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for ClientCertificateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificateRequest").finish_non_exhaustive()
    }
}

fn parse_identity(request: ClientCertificateRequest) -> Result<ClientIdentity, ApiError> {
    ClientIdentity::parse(&request.cert_pem, &request.key_pem)
        .map_err(|error| ApiError::validation(&format!("$.client_certificate.{}", error.field()), error.to_string()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    url: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    event_types: Option<Option<Vec<String>>>,
    retry: Option<RetryRequest>,
    success: Option<SuccessRule>,
    enabled: Option<bool>,
    signing: Option<Signing>,
    /// A new client certificate, or `null` to present none.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<ClientCertificateRequest>)]
    client_certificate: Option<Option<ClientCertificateRequest>>,
    /// For what the endpoint's scan takes from now on, waiting deliveries included (one
    /// already handed to a worker goes as it is); other nodes see it within 5 s.
    ordering: Option<DeliveryOrder>,
    /// With a new `url`: `false` stores it even when its certificate is not valid.
    verify: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    #[schema(value_type = String, example = "ep_01JD0000000000000000000000")]
    id: EndpointId,
    url: String,
    description: Option<String>,
    /// `null` means every type.
    event_types: Option<Vec<&'static str>>,
    retry: RetryPolicy,
    success: SuccessRule,
    enabled: bool,
    /// When finhook disabled the endpoint because every attempt failed for
    /// `disable_after_hours` (`endpoint.disabled`); `null` once it is enabled again.
    auto_disabled_at: Option<DateTime<Utc>>,
    /// The run of failed attempts since the last success; `null` while attempts succeed.
    failing: Option<Failing>,
    /// Success rate and latency over the last hour and day, the last outcome, the run of
    /// failures and the backlog (counts reach the store within about 10 s).
    health: EndpointHealth,
    signing: Signing,
    /// The client certificate presented on every attempt (its key is never shown).
    client_certificate: Option<ClientCertificateInfo>,
    /// What the last look at the server's certificate found (HTTPS URLs only): when the
    /// endpoint was created or its URL changed, then daily.
    certificate: Option<CertificateReport>,
    ordering: DeliveryOrder,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Only in answers to create and rotate-secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl EndpointView {
    fn of(endpoint: Endpoint, secret: Option<&EndpointSecret>, (failing, health): Known) -> Self {
        Self {
            auto_disabled_at: endpoint.auto_disabled_at,
            failing,
            health,
            id: endpoint.id,
            url: endpoint.url,
            description: endpoint.description,
            event_types: endpoint.event_types.map(|types| types.iter().map(|t| t.as_str()).collect()),
            ordering: endpoint.ordering,
            retry: endpoint.retry,
            success: endpoint.success,
            enabled: endpoint.enabled,
            signing: endpoint.signing,
            client_certificate: endpoint.client_certificate,
            certificate: endpoint.certificate,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
            secret: secret.map(|s| s.expose().to_string()),
        }
    }
}

/// What is known of an endpoint's deliveries: its run of failures, and its health.
type Known = (Option<Failing>, EndpointHealth);

/// What is known of each endpoint of `instance`.
async fn known_of(state: &AppState, instance: InstanceId) -> Result<HashMap<EndpointId, Known>, ApiError> {
    let mut failing: HashMap<EndpointId, Failing> =
        state.store.failing_endpoints(Some(instance)).await?.into_iter().collect();
    let health = state.store.endpoint_health(Some(instance), state.clock.now()).await?;
    Ok(health.into_iter().map(|(id, health)| (id.clone(), (failing.remove(&id), health))).collect())
}

/// What is known of one endpoint.
async fn known_of_one(state: &AppState, endpoint: &Endpoint) -> Result<Known, ApiError> {
    Ok(known_of(state, endpoint.instance_id).await?.remove(&endpoint.id).unwrap_or_default())
}

fn parse_event_types(types: Vec<String>) -> Result<Vec<MessageType>, ApiError> {
    if types.is_empty() {
        return Err(ApiError::validation("$.event_types", "must name at least one type, or be omitted for all"));
    }
    types
        .iter()
        .enumerate()
        .map(|(index, name)| {
            MessageType::parse(name).ok_or_else(|| {
                ApiError::validation(
                    &format!("$.event_types[{index}]"),
                    format!("unknown type {name:?}; expected {}", MessageType::names()),
                )
            })
        })
        .collect()
}

fn parse_retry(request: RetryRequest, base: RetryPolicy) -> Result<RetryPolicy, ApiError> {
    let policy = RetryPolicy {
        max_attempts: request.max_attempts.unwrap_or(base.max_attempts),
        interval_seconds: request.interval_seconds.unwrap_or(base.interval_seconds),
        backoff: request.backoff.unwrap_or(base.backoff),
    };
    policy.validate().map_err(|error| {
        let field = match error {
            finhook_core::retry::PolicyError::MaxAttempts => "max_attempts",
            finhook_core::retry::PolicyError::Interval => "interval_seconds",
        };
        ApiError::validation(&format!("$.retry.{field}"), error.to_string())
    })
}

/// The longest endpoint description accepted.
const MAX_DESCRIPTION_CHARS: usize = 1024;

/// A description is shown in tables and pages: bounded, and no control characters (which
/// PostgreSQL would refuse as NUL, and a terminal would obey as escapes).
fn check_description(description: String) -> Result<String, ApiError> {
    if description.is_empty() {
        return Ok(description);
    }
    finhook_core::text::check_identifier(&description, MAX_DESCRIPTION_CHARS)
        .map(|()| description)
        .map_err(|error| ApiError::validation("$.description", error.to_string()))
}

fn check_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    state
        .targets
        .check_url(url)
        .map(|_| url.to_string())
        .map_err(|error| ApiError::validation("$.url", error.to_string()))
}

/// Looks at the certificate of `url`'s server, presenting `identity`; with `verify`, a
/// certificate seen and not valid refuses the request (422 at `$.url`) before anything is
/// stored.
async fn inspect(
    state: &AppState,
    url: &str,
    identity: Option<&ClientIdentity>,
    verify: bool,
) -> Result<Option<CertificateReport>, ApiError> {
    let report = state.certificates.inspect(url, identity).await;
    // A server that cannot be reached yet is not refused: nothing is known of its
    // certificate, and the daily check looks again.
    let refused = report.as_ref().filter(|report| verify && report.is_refused());
    if let Some(problem) = refused.and_then(|report| report.problem.as_ref()) {
        return Err(ApiError::validation(
            "$.url",
            format!("{problem}; nothing was stored: fix the certificate, or pass \"verify\": false to store the endpoint anyway"),
        ));
    }
    Ok(report)
}

fn endpoint_id(raw: &str) -> Result<EndpointId, ApiError> {
    EndpointId::parse(raw).map_err(|_| ApiError::NotFound("endpoint"))
}

#[utoipa::path(operation_id = "createEndpoint", summary = "Create an endpoint (its secret is shown once)", post, path = "/v1/instances/{name}/endpoints", tag = "endpoints", params(("name" = String, Path, description = "the instance name")), request_body = CreateEndpoint,
    responses((status = 201, description = "created; `secret` is shown only now", body = EndpointView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem), (status = 422, description = "invalid; `errors` names the paths", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, Json<EndpointView>), ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let (endpoint, secret) = create_for(&state, &instance, request).await?;
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "endpoint.create", Some(instance.id), Some(endpoint.id.to_string())).await;
    Ok((StatusCode::CREATED, Json(EndpointView::of(endpoint, Some(&secret), Known::default()))))
}

/// Validates `request` and creates the endpoint for `instance` (its server's certificate
/// looked at first, as the API and the dashboard both do); the endpoint and its secret.
pub(crate) async fn create_for(
    state: &AppState,
    instance: &crate::store::Instance,
    request: CreateEndpoint,
) -> Result<(Endpoint, EndpointSecret), ApiError> {
    let new = NewEndpoint {
        url: check_url(state, &request.url)?,
        description: request.description.map(check_description).transpose()?,
        event_types: request.event_types.map(parse_event_types).transpose()?,
        retry: parse_retry(request.retry.unwrap_or_default(), RetryPolicy::default())?,
        success: request.success.unwrap_or(SuccessRule::Exactly200),
        enabled: request.enabled.unwrap_or(true),
        signing: request.signing.unwrap_or_default(),
        client_identity: request.client_certificate.map(parse_identity).transpose()?,
        ordering: request.ordering.unwrap_or_default(),
        secret: EndpointSecret::generate(),
        now: state.clock.now(),
    };
    let secret = new.secret.clone();
    let certificate = inspect(state, &new.url, new.client_identity.as_ref(), request.verify.unwrap_or(true)).await?;
    if new.signing == Signing::Ed25519 {
        super::signing_keys::ensure_key(state, instance.id).await?;
    }
    let mut endpoint = state.store.create_endpoint(instance.id, new).await?;
    if certificate.is_some() {
        state.store.set_endpoint_certificate(&endpoint.id, certificate.as_ref()).await?;
        endpoint.certificate = certificate;
    }
    tracing::info!(instance = %instance.name, endpoint = %endpoint.id, "endpoint created");
    Ok((endpoint, secret))
}

impl UpdateEndpoint {
    /// What the dashboard's edit form gives: a URL, a description (none when empty), the
    /// types it takes (all when empty) and its ordering; nothing else changes.
    pub(crate) fn from_form(
        url: String,
        description: Option<String>,
        event_types: Vec<String>,
        ordering: DeliveryOrder,
    ) -> Self {
        Self {
            url: Some(url),
            description: Some(description),
            event_types: Some((!event_types.is_empty()).then_some(event_types)),
            retry: None,
            success: None,
            enabled: None,
            signing: None,
            client_certificate: None,
            ordering: Some(ordering),
            verify: None,
        }
    }
}

impl CreateEndpoint {
    /// What the dashboard's form gives: a URL, a description and the types it takes (all
    /// when empty); the rest as the API's defaults.
    pub(crate) fn from_form(url: String, description: Option<String>, event_types: Vec<String>) -> Self {
        Self {
            url,
            description,
            event_types: (!event_types.is_empty()).then_some(event_types),
            retry: None,
            success: None,
            enabled: None,
            signing: None,
            client_certificate: None,
            ordering: None,
            verify: None,
        }
    }
}

#[utoipa::path(operation_id = "listEndpoints", summary = "List an instance's endpoints with their health", get, path = "/v1/instances/{name}/endpoints", tag = "endpoints", params(("name" = String, Path, description = "the instance name")), responses((status = 200, description = "every endpoint, oldest first, in one page", body = EndpointPage), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<EndpointPage>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let endpoints = state.store.list_endpoints(instance.id).await?;
    let mut known = known_of(&state, instance.id).await?;
    let data = endpoints
        .into_iter()
        .map(|e| {
            let known = known.remove(&e.id).unwrap_or_default();
            EndpointView::of(e, None, known)
        })
        .collect();
    Ok(Json(EndpointPage { data, next_cursor: None }))
}

/// The list shape of every list in the API. An instance's endpoints come whole, in one
/// page: `next_cursor` is always `null` here today.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointPage {
    data: Vec<EndpointView>,
    next_cursor: Option<String>,
}

#[utoipa::path(operation_id = "getEndpoint", summary = "Show an endpoint with its health", get, path = "/v1/instances/{name}/endpoints/{id}", tag = "endpoints", params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the endpoint id (ep_...)")), responses((status = 200, body = EndpointView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<EndpointView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let endpoint =
        state.store.endpoint(instance.id, &endpoint_id(&id)?).await?.ok_or(ApiError::NotFound("endpoint"))?;
    let failing = known_of_one(&state, &endpoint).await?;
    Ok(Json(EndpointView::of(endpoint, None, failing)))
}

#[utoipa::path(operation_id = "updateEndpoint", summary = "Change an endpoint", patch, path = "/v1/instances/{name}/endpoints/{id}", tag = "endpoints", params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the endpoint id (ep_...)")), request_body = UpdateEndpoint,
    responses((status = 200, body = EndpointView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem), (status = 422, description = "invalid; `errors` names the paths", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path((name, id)): Path<(String, String)>,
    ApiJson(request): ApiJson<UpdateEndpoint>,
) -> Result<Json<EndpointView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let endpoint = update_for(&state, instance.id, &endpoint_id(&id)?, request).await?;
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "endpoint.update", Some(instance.id), Some(endpoint.id.to_string())).await;
    let failing = known_of_one(&state, &endpoint).await?;
    Ok(Json(EndpointView::of(endpoint, None, failing)))
}

/// Changes `instance`'s endpoint `id` as `request` says, checked and looked at exactly as
/// the API does (the dashboard's edit form comes here too).
pub(crate) async fn update_for(
    state: &AppState,
    instance: InstanceId,
    id: &EndpointId,
    request: UpdateEndpoint,
) -> Result<Endpoint, ApiError> {
    let current = state.store.endpoint(instance, id).await?.ok_or(ApiError::NotFound("endpoint"))?;
    let patch = EndpointPatch {
        url: request.url.map(|url| check_url(state, &url)).transpose()?,
        description: request.description.map(|d| d.map(check_description).transpose()).transpose()?,
        event_types: request.event_types.map(|types| types.map(parse_event_types).transpose()).transpose()?,
        retry: request.retry.map(|retry| parse_retry(retry, current.retry)).transpose()?,
        success: request.success,
        enabled: request.enabled,
        signing: request.signing,
        client_identity: request.client_certificate.map(|c| c.map(parse_identity).transpose()).transpose()?,
        ordering: request.ordering,
    };
    // A new URL (or a new client certificate) is looked at as a new endpoint is.
    let certificate = if patch.url.is_some() || patch.client_identity.is_some() {
        let url = patch.url.clone().unwrap_or_else(|| current.url.clone());
        let identity = match &patch.client_identity {
            Some(identity) => identity.clone().map(Arc::new),
            None => state.store.dispatch_endpoint(id, state.clock.now()).await?.and_then(|e| e.identity),
        };
        Some(inspect(state, &url, identity.as_deref(), request.verify.unwrap_or(true)).await?)
    } else {
        None
    };
    if patch.signing == Some(Signing::Ed25519) {
        super::signing_keys::ensure_key(state, instance).await?;
    }
    let mut endpoint = state
        .store
        .update_endpoint(instance, id, patch, state.clock.now())
        .await?
        .ok_or(ApiError::NotFound("endpoint"))?;
    if let Some(certificate) = certificate {
        state.store.set_endpoint_certificate(&endpoint.id, certificate.as_ref()).await?;
        endpoint.certificate = certificate;
    }
    Ok(endpoint)
}

#[utoipa::path(operation_id = "deleteEndpoint", summary = "Delete an endpoint (its pending deliveries are cancelled)", delete, path = "/v1/instances/{name}/endpoints/{id}", tag = "endpoints", params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the endpoint id (ep_...)")),
    responses((status = 204, description = "deleted; its pending deliveries are cancelled"), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    if state.store.delete_endpoint(instance.id, &endpoint_id(&id)?, state.clock.now()).await? {
        audit::record(&state, audit::actor(&caller, Via::Api), &origin, "endpoint.delete", Some(instance.id), Some(id))
            .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("endpoint"))
    }
}

#[utoipa::path(operation_id = "rotateEndpointSecret", summary = "Give an endpoint a new secret (the old one signs for 24 h)", post, path = "/v1/instances/{name}/endpoints/{id}/rotate-secret", tag = "endpoints", params(("name" = String, Path, description = "the instance name"), ("id" = String, Path, description = "the endpoint id (ep_...)")),
    responses((status = 200, description = "the new `secret`; the old one keeps signing for 24 h", body = EndpointView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<EndpointView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let id = endpoint_id(&id)?;
    let secret = rotate(&state, instance.id, &id).await?;
    let endpoint = state.store.endpoint(instance.id, &id).await?.ok_or(ApiError::NotFound("endpoint"))?;
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "endpoint.rotate_secret", Some(instance.id), Some(endpoint.id.to_string()))
        .await;
    let failing = known_of_one(&state, &endpoint).await?;
    Ok(Json(EndpointView::of(endpoint, Some(&secret), failing)))
}

/// Gives the endpoint a new secret; the old one keeps signing for [`ROTATION_OVERLAP`], so
/// a receiver can take the new one without losing a callback.
pub(crate) async fn rotate(
    state: &AppState,
    instance: InstanceId,
    id: &EndpointId,
) -> Result<EndpointSecret, ApiError> {
    let secret = EndpointSecret::generate();
    let now = state.clock.now();
    if !state.store.rotate_secret(instance, id, &secret, now, now + ROTATION_OVERLAP).await? {
        return Err(ApiError::NotFound("endpoint"));
    }
    Ok(secret)
}
