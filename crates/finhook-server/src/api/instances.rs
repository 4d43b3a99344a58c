//! `/v1/instances`: create (admin), list (admin), show.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use finhook_core::secret::ApiKey;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::http::audit::{self, Origin, Via};
use crate::http::ApiJson;
use crate::http::{ApiError, Caller, Problem};
use crate::store::{Instance, Mode, NewInstance};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    name: String,
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstance {
    sandbox: Option<SandboxUpdate>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxUpdate {
    strict_auth: Option<bool>,
    aggregation_delay_ms: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SandboxView {
    strict_auth: bool,
    aggregation_delay_ms: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    name: String,
    customer_id: String,
    mode: &'static str,
    created_at: DateTime<Utc>,
    /// Bytes of callbacks the instance stores (what the `instance_quota_bytes` quota counts).
    stored_bytes: u64,
    /// Only for sandbox instances.
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: Option<SandboxView>,
    /// Only in the answer to `POST`: the key is shown once and stored hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<String>,
}

impl InstanceView {
    fn of(instance: Instance, api_key: Option<&ApiKey>) -> Self {
        Self {
            name: instance.name.clone(),
            customer_id: instance.customer_id,
            mode: instance.mode.as_str(),
            created_at: instance.created_at,
            stored_bytes: instance.stored_bytes,
            sandbox: (instance.mode == Mode::Sandbox).then_some(SandboxView {
                strict_auth: instance.sandbox.strict_auth,
                aggregation_delay_ms: instance.sandbox.delay_ms,
            }),
            api_key: api_key.map(|key| key.expose().to_string()),
        }
    }
}

/// `[a-z0-9-]{1,63}`, not starting or ending with `-`: a DNS label, so a name is safe in
/// URLs, hostnames and command lines (a leading `-` reads as an option).
pub fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[utoipa::path(operation_id = "createInstance", summary = "Create an instance (admin; its API key is shown once)", post, path = "/v1/instances", tag = "instances", request_body = CreateInstance,
    responses((status = 201, description = "created; `api_key` is shown only now", body = InstanceView), (status = 401, description = "no or bad key", body = Problem),
        (status = 403, description = "needs the admin key", body = Problem), (status = 409, description = "the name is taken", body = Problem), (status = 422, description = "invalid; `errors` names the paths", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    ApiJson(request): ApiJson<CreateInstance>,
) -> Result<(StatusCode, Json<InstanceView>), ApiError> {
    caller.require_admin()?;
    if !valid_name(&request.name) {
        return Err(ApiError::validation(
            "$.name",
            "must be 1 to 63 characters of a-z, 0-9 and -, starting and ending with a letter or digit",
        ));
    }
    let mode = match request.mode.as_deref() {
        None => Mode::Live,
        Some(mode) => {
            Mode::parse(mode).ok_or_else(|| ApiError::validation("$.mode", "must be \"live\" or \"sandbox\""))?
        }
    };
    let api_key = ApiKey::generate();
    let new = NewInstance {
        name: request.name,
        customer_id: uuid::Uuid::new_v4().to_string(),
        mode,
        api_key_hash: api_key.hash(),
        now: state.clock.now(),
    };
    let instance = state.store.create_instance(new).await.map_err(|error| match error {
        crate::store::StoreError::Conflict(what) => {
            ApiError::Conflict(format!("{what} already exists; pick another name"))
        }
        other => other.into(),
    })?;
    tracing::info!(instance = %instance.name, mode = instance.mode.as_str(), "instance created");
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "instance.create", Some(instance.id), Some(instance.name.clone())).await;
    Ok((StatusCode::CREATED, Json(InstanceView::of(instance, Some(&api_key)))))
}

#[utoipa::path(operation_id = "listInstances", summary = "List the instances the key may see", get, path = "/v1/instances", tag = "instances", responses((status = 200, description = "every instance the key may see, by name, in one page", body = InstancePage), (status = 401, description = "no or bad key", body = Problem)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<InstancePage>, ApiError> {
    let instances = match caller {
        Caller::Admin => state.store.list_instances().await?,
        Caller::Instance(own) => vec![*own],
    };
    Ok(Json(InstancePage {
        data: instances.into_iter().map(|i| InstanceView::of(i, None)).collect(),
        next_cursor: None,
    }))
}

/// The list shape of every list in the API. The instances come whole, in one page:
/// `next_cursor` is always `null` here today.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstancePage {
    data: Vec<InstanceView>,
    next_cursor: Option<String>,
}

#[utoipa::path(operation_id = "getInstance", summary = "Show an instance", get, path = "/v1/instances/{name}", tag = "instances", params(("name" = String, Path, description = "the instance name")), responses((status = 200, body = InstanceView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<InstanceView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    Ok(Json(InstanceView::of(instance, None)))
}

/// The longest simulated aggregation: ten minutes.
const MAX_DELAY_MS: u64 = 600_000;

#[utoipa::path(operation_id = "updateInstance", summary = "Change a sandbox instance's settings", patch, path = "/v1/instances/{name}", tag = "instances", params(("name" = String, Path, description = "the instance name")), request_body = UpdateInstance,
    responses((status = 200, body = InstanceView), (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem), (status = 422, description = "invalid; `errors` names the paths", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<UpdateInstance>,
) -> Result<Json<InstanceView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    if let Some(sandbox) = request.sandbox {
        if instance.mode != Mode::Sandbox {
            return Err(ApiError::validation("$.sandbox", "only sandbox instances have sandbox settings"));
        }
        let delay = sandbox.aggregation_delay_ms.unwrap_or(instance.sandbox.delay_ms);
        if delay > MAX_DELAY_MS {
            return Err(ApiError::validation(
                "$.sandbox.aggregation_delay_ms",
                format!("must be at most {MAX_DELAY_MS}"),
            ));
        }
        let strict = sandbox.strict_auth.unwrap_or(instance.sandbox.strict_auth);
        state.store.set_sandbox_settings(instance.id, strict, delay).await?;
    }
    let instance = state.store.instance_by_name(&name).await?.ok_or(ApiError::NotFound("instance"))?;
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "instance.update", Some(instance.id), Some(instance.name.clone())).await;
    Ok(Json(InstanceView::of(instance, None)))
}

#[utoipa::path(operation_id = "rotateInstanceKey", summary = "Give an instance a new API key", post, path = "/v1/instances/{name}/rotate-key", tag = "instances", params(("name" = String, Path, description = "the instance name")),
    responses((status = 200, description = "the new `api_key`, shown only now; the old key stops working at once", body = InstanceView),
        (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
    origin: Origin,
    Path(name): Path<String>,
) -> Result<Json<InstanceView>, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let api_key = ApiKey::generate();
    state.store.set_instance_key_hash(instance.id, &api_key.hash()).await?;
    tracing::info!(instance = %instance.name, "instance API key rotated");
    let actor = audit::actor(&caller, Via::Api);
    audit::record(&state, actor, &origin, "instance.rotate_key", Some(instance.id), Some(instance.name.clone())).await;
    Ok(Json(InstanceView::of(instance, Some(&api_key))))
}
