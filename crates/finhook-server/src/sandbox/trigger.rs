//! `POST /v1/instances/{name}/sandbox/trigger` (and `finhook trigger`): fire sandbox
//! callbacks at a sandbox instance's endpoints without going through a connection.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use finhook_core::flinks::ResponseType;
use serde::{Deserialize, Serialize};

use super::banking::DetailOptions;
use super::data;
use super::flow::{connection, Sandbox, SandboxError, Sent};
use super::institutions::{self, InstitutionKind};
use crate::app::AppState;
use crate::http::{ApiError, ApiJson, Caller};
use crate::store::sandbox::{RequestState, SandboxLogin, SandboxRequest};
use crate::store::{Instance, Mode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Kyc,
    Accounts,
    Investments,
    /// A whole connection: KYC, GetAccountsDetail and, for an investment institution, Investments.
    Connect,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    kind: TriggerKind,
    /// Default: `TundraWealth` for investments, else `FlinksCapital`.
    institution: Option<String>,
    /// Reuse a sandbox login (a refresh); default: a new one.
    login_id: Option<String>,
    tag: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggeredEndpoint {
    endpoint_id: String,
    url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriggeredMessage {
    message_id: String,
    response_type: &'static str,
    endpoints: Vec<TriggeredEndpoint>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Triggered {
    login_id: String,
    request_id: String,
    institution: String,
    tag: Option<String>,
    messages: Vec<TriggeredMessage>,
}

/// Makes the login and request, then ingests the callbacks `kind` asks for.
async fn fire(
    sandbox: &Sandbox,
    instance: &Instance,
    request: TriggerRequest,
) -> Result<(SandboxLogin, SandboxRequest, Vec<Sent>), ApiError> {
    let default = if request.kind == TriggerKind::Investments { "TundraWealth" } else { "FlinksCapital" };
    let code = request.institution.as_deref().unwrap_or(default);
    let institution = institutions::find(code)
        .ok_or_else(|| ApiError::validation("$.institution", format!("unknown sandbox institution {code:?}")))?;
    if request.kind == TriggerKind::Investments && institution.kind != InstitutionKind::Investment {
        return Err(ApiError::validation(
            "$.institution",
            "Investments callbacks come from an investment institution, e.g. TundraWealth",
        ));
    }
    let now = sandbox.clock.now();
    let login = match &request.login_id {
        Some(login_id) => {
            let mut login =
                sandbox.store.sandbox_login(instance.id, login_id).await?.ok_or(ApiError::NotFound("sandbox login"))?;
            if request.tag.is_some() {
                login.tag = request.tag.clone();
            }
            login
        }
        None => SandboxLogin {
            login_id: uuid::Uuid::new_v4().to_string(),
            instance_id: instance.id,
            institution: institution.code.to_string(),
            username: institutions::USER_OK.to_string(),
            tag: request.tag.clone(),
            created_at: now,
        },
    };
    sandbox.store.put_sandbox_login(&login).await?;
    let record = SandboxRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        instance_id: instance.id,
        login_id: login.login_id.clone(),
        state: RequestState::Authorized,
        created_at: now,
        detail: None,
        ready_at: None,
        callbacks_pending: false,
    };
    sandbox.store.put_sandbox_request(&record).await?;
    let sent = send(sandbox, &login, &record, request.kind).await.map_err(|error| match error {
        SandboxError::Flinks { message, .. } => ApiError::validation("$", message),
        SandboxError::Store(error) => ApiError::Store(error),
        SandboxError::Ingest(error) => error.into(),
    })?;
    Ok((login, record, sent))
}

async fn send(
    sandbox: &Sandbox,
    login: &SandboxLogin,
    request: &SandboxRequest,
    kind: TriggerKind,
) -> Result<Vec<Sent>, SandboxError> {
    let connection = connection(login, request)?;
    let (response_type, body) = match kind {
        TriggerKind::Connect => return sandbox.send_callbacks(login, request, None).await,
        TriggerKind::Kyc => (ResponseType::Kyc, data::as_callback(&data::kyc(&connection), ResponseType::Kyc)),
        TriggerKind::Accounts => (
            ResponseType::GetAccountsDetail,
            data::as_callback(
                &data::accounts_detail(&connection, &DetailOptions::webhook()),
                ResponseType::GetAccountsDetail,
            ),
        ),
        TriggerKind::Investments => {
            let wealth = data::investments(&connection).ok_or_else(|| {
                SandboxError::flinks(super::flow::FlinksCode::InvalidRequest, "not an investment institution")
            })?;
            (ResponseType::Investments, data::as_callback(&wealth, ResponseType::Investments))
        }
    };
    Ok(vec![sandbox.send(login.instance_id, request, response_type, &body).await?])
}

#[utoipa::path(operation_id = "triggerSandbox", summary = "Fire sandbox callbacks at a sandbox instance's endpoints", post, path = "/v1/instances/{name}/sandbox/trigger", tag = "sandbox", params(("name" = String, Path, description = "the instance name")), request_body = TriggerRequest,
    responses((status = 202, body = Triggered), (status = 401, description = "no or bad key", body = crate::http::Problem), (status = 404, description = "unknown, or another instance's", body = crate::http::Problem), (status = 409, description = "not a sandbox instance", body = crate::http::Problem), (status = 422, description = "invalid; `errors` names the paths", body = crate::http::Problem)))]
pub async fn trigger(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<TriggerRequest>,
) -> Result<(StatusCode, Json<Triggered>), ApiError> {
    let instance = caller.instance(&state, &name).await?;
    if instance.mode != Mode::Sandbox {
        return Err(ApiError::Conflict(format!(
            "{name} is a live instance; sandbox callbacks go only to instances in sandbox mode"
        )));
    }
    let (login, record, sent) = fire(&state.sandbox, &instance, request).await?;
    let endpoints = state.store.list_endpoints(instance.id).await?;
    let mut messages = Vec::new();
    for sent in sent {
        let detail = state.store.message(instance.id, &sent.message_id).await?.ok_or(ApiError::NotFound("message"))?;
        let endpoints = detail
            .deliveries
            .iter()
            .filter_map(|d| endpoints.iter().find(|e| e.id == d.endpoint_id))
            .map(|e| TriggeredEndpoint { endpoint_id: e.id.to_string(), url: e.url.clone() })
            .collect();
        messages.push(TriggeredMessage {
            message_id: sent.message_id.to_string(),
            response_type: sent.response_type.as_str(),
            endpoints,
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Triggered {
            login_id: login.login_id,
            request_id: record.request_id,
            institution: login.institution,
            tag: login.tag,
            messages,
        }),
    ))
}
