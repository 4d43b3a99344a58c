//! The Flinks banking API of sandbox instances, under `/v3/{customer_id}/BankingServices/`,
//! and the simulated Connect redirect at `/sandbox/{customer_id}/connect`.
//!
//! Request bodies are read with case-insensitive keys (client libraries in the wild send
//! both `RequestId` and `requestId`); answers use Flinks' exact field names and codes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use finhook_core::secret::KeyHash;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::banking::DetailOptions;
use super::data;
use super::flow::{connection, institution_of, Authorized, FlinksCode, SandboxError};
use super::institutions;
use crate::app::AppState;
use crate::store::sandbox::{RequestState, SandboxLogin, SandboxRequest};
use crate::store::{Instance, Mode};

/// How long an authorize token stays usable.
const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::minutes(30);
/// How long a RequestId can be used for data, as Flinks' processing timeout.
const SESSION_LIFETIME: chrono::Duration = chrono::Duration::minutes(30);

pub fn routes() -> Router<AppState> {
    let base = "/v3/{customer_id}/BankingServices";
    Router::new()
        .route(&format!("{base}/GenerateAuthorizeToken"), post(generate_authorize_token))
        .route(&format!("{base}/Authorize"), post(authorize))
        .route(&format!("{base}/GetAccountsDetail"), post(get_accounts_detail))
        .route(
            &format!("{base}/GetAccountsDetailAsync/{{request_id}}"),
            get(get_accounts_detail_async_get).post(get_accounts_detail_async_post),
        )
        .route(&format!("{base}/GetAccountsSummary"), post(get_accounts_summary))
        .route("/sandbox/{customer_id}/connect", get(connect))
        .route("/v1/instances/{name}/sandbox/trigger", post(super::trigger::trigger))
}

impl IntoResponse for SandboxError {
    fn into_response(self) -> Response {
        let (status, code, message, request_id) = match self {
            SandboxError::Flinks { code, message, request_id } => (code.status(), code.as_str(), message, request_id),
            other => {
                tracing::error!(error = ?other, "sandbox failure");
                (500, "AGGREGATION_ERROR", "the sandbox failed; retry".to_string(), None)
            }
        };
        let mut body = json!({ "HttpStatusCode": status, "FlinksCode": code, "Message": message });
        if let Some(request_id) = request_id {
            body["RequestId"] = json!(request_id);
        }
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
    }
}

type Reply = Result<Response, SandboxError>;

fn invalid(message: impl Into<String>) -> SandboxError {
    SandboxError::flinks(FlinksCode::InvalidRequest, message)
}

async fn sandbox_instance(state: &AppState, customer_id: &str) -> Result<Instance, SandboxError> {
    match state.store.instance_by_customer_id(customer_id).await? {
        Some(instance) if instance.mode == Mode::Sandbox => Ok(instance),
        _ => Err(invalid("no sandbox instance has this customer id; create one with mode \"sandbox\"")),
    }
}

/// A JSON object body with its keys lower-cased; an empty body is `{}`.
fn lenient_body(bytes: &Bytes) -> Result<Map<String, Value>, SandboxError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect()),
        _ => Err(invalid("the body must be a JSON object")),
    }
}

fn text(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string).filter(|s| !s.is_empty())
}

fn flag(body: &Map<String, Value>, key: &str, default: bool) -> bool {
    body.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// In strict mode the instance API key must be presented in `name`.
async fn require_key(
    state: &AppState,
    instance: &Instance,
    headers: &HeaderMap,
    name: &str,
) -> Result<(), SandboxError> {
    if !instance.sandbox.strict_auth {
        return Ok(());
    }
    let presented = header(headers, name).unwrap_or_default();
    if !presented.is_empty() && state.store.instance_key_matches(instance.id, &KeyHash::of(presented)).await? {
        Ok(())
    } else {
        Err(SandboxError::flinks(
            FlinksCode::Unauthorized,
            format!("the {name} header must carry this instance's API key"),
        ))
    }
}

#[utoipa::path(operation_id = "flinksGenerateAuthorizeToken", summary = "Flinks sandbox: a one-use token for Authorize", post, path = "/v3/{customer_id}/BankingServices/GenerateAuthorizeToken", tag = "sandbox", security(()), params(("customer_id" = String, Path, description = "the sandbox instance's customer_id (a GUID)"), ("flinks-auth-key" = Option<String>, Header, description = "the instance API key (required in strict mode)")),
    responses((status = 200, description = "`{HttpStatusCode, Token}`", body = serde_json::Value), (status = 400, description = "Flinks-style failure `{HttpStatusCode, FlinksCode, Message}`: an invalid request, no sandbox instance with this customer id, or a RequestId that does not exist or expired", body = serde_json::Value), (status = 401, description = "Flinks-style failure: the key header is missing or wrong (strict mode), or the login refused", body = serde_json::Value)))]
pub async fn generate_authorize_token(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    headers: HeaderMap,
) -> Reply {
    let instance = sandbox_instance(&state, &customer_id).await?;
    require_key(&state, &instance, &headers, "flinks-auth-key").await?;
    let token = uuid::Uuid::new_v4().to_string();
    state.store.put_sandbox_token(instance.id, &token, state.clock.now() + TOKEN_LIFETIME).await?;
    Ok(Json(json!({ "HttpStatusCode": 200, "Token": token })).into_response())
}

fn links(rels: &[(&str, &str)]) -> Value {
    Value::Array(rels.iter().map(|(rel, href)| json!({ "rel": rel, "href": href, "example": null })).collect())
}

fn authorized_body(login: &SandboxLogin, request: &SandboxRequest) -> Result<Value, SandboxError> {
    let connection = connection(login, request)?;
    let institution = connection.institution;
    let mut body = json!({
        "Links": links(&[("AccountsDetail", "/GetAccountsDetail"), ("AccountsSummary", "/GetAccountsSummary"), ("Statements", "/GetStatements")]),
        "HttpStatusCode": 200,
        "Login": connection.login(),
        "InstitutionName": institution.name,
        "InstitutionId": institution.id,
        "Institution": institution.code,
        "RequestId": request.request_id,
    });
    if let Some(tag) = &login.tag {
        body["Tag"] = json!(tag);
    }
    Ok(body)
}

fn authorize_reply(outcome: Authorized) -> Reply {
    match outcome {
        Authorized::Done { login, request } => Ok(Json(authorized_body(&login, &request)?).into_response()),
        Authorized::Challenge { login, request } => {
            let body = json!({
                "HttpStatusCode": 203,
                "Links": links(&[("Authorization", "/Authorize")]),
                "SecurityChallenges": [{ "Type": "QuestionAndAnswer", "Prompt": institutions::MFA_PROMPT }],
                "Institution": institution_of(&login)?.code,
                "RequestId": request.request_id,
            });
            Ok((StatusCode::NON_AUTHORITATIVE_INFORMATION, Json(body)).into_response())
        }
    }
}

#[utoipa::path(operation_id = "flinksAuthorize", summary = "Flinks sandbox: log in (credentials, an MFA answer, or a LoginId)", post, path = "/v3/{customer_id}/BankingServices/Authorize", tag = "sandbox", security(()), params(("customer_id" = String, Path, description = "the sandbox instance's customer_id (a GUID)"), ("flinks-auth-key" = Option<String>, Header, description = "a token from GenerateAuthorizeToken (required in strict mode)")), request_body(content = serde_json::Value, description = "Flinks' Authorize body: `Institution`, `Username`, `Password`, `MostRecentCached`, `Tag`, `SecurityResponses`, or `LoginId` (see docs/flinks-reference.md)"),
    responses((status = 200, description = "authorized: `{HttpStatusCode, Login, Institution, RequestId}`", body = serde_json::Value), (status = 203, description = "an MFA challenge: `SecurityChallenges` to answer with the same RequestId", body = serde_json::Value), (status = 400, description = "Flinks-style failure `{HttpStatusCode, FlinksCode, Message}`: an invalid request, no sandbox instance with this customer id, or a RequestId that does not exist or expired", body = serde_json::Value), (status = 401, description = "Flinks-style failure: the key header is missing or wrong (strict mode), or the login refused", body = serde_json::Value), (status = 405, description = "the institution is disabled", body = serde_json::Value)))]
pub async fn authorize(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let instance = sandbox_instance(&state, &customer_id).await?;
    let token = header(&headers, "flinks-auth-key").unwrap_or_default();
    let token_ok = !token.is_empty() && state.store.use_sandbox_token(instance.id, token, state.clock.now()).await?;
    if instance.sandbox.strict_auth && !token_ok {
        return Err(SandboxError::flinks(
            FlinksCode::Unauthorized,
            "flinks-auth-key must carry an unused token from /GenerateAuthorizeToken",
        ));
    }
    let body = lenient_body(&bytes)?;
    let sandbox = &state.sandbox;
    if let (Some(request_id), Some(responses)) = (text(&body, "requestid"), body.get("securityresponses")) {
        let responses: HashMap<String, Vec<String>> = serde_json::from_value(responses.clone())
            .map_err(|_| invalid("SecurityResponses must map each prompt to a list of answers"))?;
        return authorize_reply(sandbox.answer_challenge(&instance, &request_id, &responses).await?);
    }
    if let Some(login_id) = text(&body, "loginid") {
        return authorize_reply(
            sandbox.authorize_login(&instance, &login_id, flag(&body, "mostrecentcached", true)).await?,
        );
    }
    match (text(&body, "institution"), text(&body, "username"), text(&body, "password")) {
        (Some(institution), Some(username), Some(password)) => {
            authorize_reply(sandbox.authorize_credentials(&instance, &institution, &username, &password, text(&body, "tag")).await?)
        }
        _ => Err(invalid("send LoginId (with MostRecentCached), or Institution, Username and Password, or RequestId with SecurityResponses")),
    }
}

fn detail_options(body: &Map<String, Value>) -> Result<DetailOptions, SandboxError> {
    let days = match text(body, "daysoftransactions").as_deref() {
        None | Some("Days90") => 90,
        Some("Days365") => 365,
        Some(other) => {
            return Err(invalid(format!("DaysOfTransactions must be \"Days90\" or \"Days365\", not {other:?}")))
        }
    };
    let accounts_filter = match body.get("accountsfilter") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            serde_json::from_value::<Vec<String>>(value.clone())
                .map_err(|_| invalid("AccountsFilter must be a list of account Ids"))?,
        ),
    };
    Ok(DetailOptions {
        with_account_identity: flag(body, "withaccountidentity", false),
        with_transactions: flag(body, "withtransactions", true),
        with_balance: flag(body, "withbalance", true),
        days,
        accounts_filter: accounts_filter.filter(|ids| !ids.is_empty()),
    })
}

fn pending(request_id: &str) -> Response {
    let body = json!({
        "FlinksCode": "OPERATION_PENDING",
        "Links": [{ "rel": "GetAccountsDetailAsync", "href": "/GetAccountsDetailAsync", "example": format!("/GetAccountsDetailAsync/{request_id}") }],
        "HttpStatusCode": 202,
        "Message": "Your operation is still processing",
        "RequestId": request_id,
    });
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

async fn authorized_request(
    state: &AppState,
    instance: &Instance,
    request_id: &str,
) -> Result<(SandboxLogin, SandboxRequest), SandboxError> {
    let request = state.sandbox.request(instance.id, request_id).await?;
    if state.clock.now() - request.created_at > SESSION_LIFETIME {
        return Err(SandboxError::Flinks {
            code: FlinksCode::SessionExpired,
            message: "this RequestId is older than 30 minutes; call /Authorize with the LoginId for a new one"
                .to_string(),
            request_id: Some(request.request_id),
        });
    }
    if request.state != RequestState::Authorized {
        return Err(SandboxError::Flinks {
            code: FlinksCode::Unauthorized,
            message: "answer the security challenge with /Authorize first".to_string(),
            request_id: Some(request.request_id),
        });
    }
    let login = state.sandbox.login(instance.id, &request.login_id).await?;
    Ok((login, request))
}

/// Records the first GetAccountsDetail call (its options and when its data will be ready).
async fn begin_detail(
    state: &AppState,
    instance: &Instance,
    mut request: SandboxRequest,
    options: &DetailOptions,
) -> Result<(), SandboxError> {
    request.detail = Some(serde_json::to_string(options).map_err(|e| invalid(e.to_string()))?);
    request.ready_at = Some(state.sandbox.ready_at(instance));
    state.store.put_sandbox_request(&request).await?;
    Ok(())
}

/// 202 until the simulated aggregation is done, then the accounts with the stored options.
fn detail_reply(state: &AppState, login: &SandboxLogin, request: &SandboxRequest) -> Reply {
    let ready = request.ready_at.is_some_and(|at| state.clock.now() >= at);
    let Some(options) = request.detail.as_deref().filter(|_| ready) else { return Ok(pending(&request.request_id)) };
    let options: DetailOptions = serde_json::from_str(options).map_err(|e| invalid(e.to_string()))?;
    let body = data::accounts_detail(&connection(login, request)?, &options);
    Ok(Json(body).into_response())
}

#[utoipa::path(operation_id = "flinksGetAccountsDetail", summary = "Flinks sandbox: accounts with holders and transactions (202 while aggregating)", post, path = "/v3/{customer_id}/BankingServices/GetAccountsDetail", tag = "sandbox", security(()), params(("customer_id" = String, Path, description = "the sandbox instance's customer_id (a GUID)"), ("x-api-key" = Option<String>, Header, description = "the instance API key (required in strict mode)")), request_body(content = serde_json::Value, description = "`RequestId`, and Flinks' options (`WithAccountIdentity`, `WithTransactions`, `DaysOfTransactions`, `AccountsFilter`, ...)"),
    responses((status = 200, description = "asked again once the aggregation is done: the GetAccountsDetail answer, the same data its callback carries", body = serde_json::Value), (status = 202, description = "the first answer, as Flinks gives it: `OPERATION_PENDING`, poll GetAccountsDetailAsync", body = serde_json::Value), (status = 400, description = "Flinks-style failure `{HttpStatusCode, FlinksCode, Message}`: an invalid request, no sandbox instance with this customer id, or a RequestId that does not exist or expired", body = serde_json::Value), (status = 401, description = "Flinks-style failure: the key header is missing or wrong (strict mode), or the login refused", body = serde_json::Value)))]
pub async fn get_accounts_detail(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let instance = sandbox_instance(&state, &customer_id).await?;
    require_key(&state, &instance, &headers, "x-api-key").await?;
    let body = lenient_body(&bytes)?;
    let request_id = text(&body, "requestid").ok_or_else(|| invalid("RequestId is required"))?;
    let options = detail_options(&body)?;
    let (login, request) = authorized_request(&state, &instance, &request_id).await?;
    if request.detail.is_none() {
        // Like Flinks, the first answer is always 202; poll GetAccountsDetailAsync.
        begin_detail(&state, &instance, request, &options).await?;
        return Ok(pending(&request_id));
    }
    detail_reply(&state, &login, &request)
}

#[utoipa::path(operation_id = "flinksGetAccountsDetailAsync", summary = "Flinks sandbox: poll an aggregation (GET)", get, path = "/v3/{customer_id}/BankingServices/GetAccountsDetailAsync/{request_id}", tag = "sandbox", security(()), params(("customer_id" = String, Path, description = "the sandbox instance's customer_id (a GUID)"), ("request_id" = String, Path), ("x-api-key" = Option<String>, Header, description = "the instance API key (required in strict mode)")),
    responses((status = 200, description = "the GetAccountsDetail answer once ready", body = serde_json::Value), (status = 202, description = "`OPERATION_PENDING`: poll again", body = serde_json::Value), (status = 400, description = "Flinks-style failure `{HttpStatusCode, FlinksCode, Message}`: an invalid request, no sandbox instance with this customer id, or a RequestId that does not exist or expired", body = serde_json::Value), (status = 401, description = "Flinks-style failure: the key header is missing or wrong (strict mode), or the login refused", body = serde_json::Value)))]
pub async fn get_accounts_detail_async_get(
    state: State<AppState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    get_accounts_detail_async(state, path, headers).await
}

#[utoipa::path(operation_id = "flinksGetAccountsDetailAsyncPost", summary = "Flinks sandbox: poll an aggregation (POST, as Flinks also takes it)", post, path = "/v3/{customer_id}/BankingServices/GetAccountsDetailAsync/{request_id}", tag = "sandbox", security(()), params(("customer_id" = String, Path, description = "the sandbox instance's customer_id (a GUID)"), ("request_id" = String, Path), ("x-api-key" = Option<String>, Header, description = "the instance API key (required in strict mode)")),
    responses((status = 200, description = "the GetAccountsDetail answer once ready", body = serde_json::Value), (status = 202, description = "`OPERATION_PENDING`: poll again", body = serde_json::Value), (status = 400, description = "Flinks-style failure `{HttpStatusCode, FlinksCode, Message}`: an invalid request, no sandbox instance with this customer id, or a RequestId that does not exist or expired", body = serde_json::Value), (status = 401, description = "Flinks-style failure: the key header is missing or wrong (strict mode), or the login refused", body = serde_json::Value)))]
pub async fn get_accounts_detail_async_post(
    state: State<AppState>,
    path: Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    get_accounts_detail_async(state, path, headers).await
}

async fn get_accounts_detail_async(
    State(state): State<AppState>,
    Path((customer_id, request_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let instance = sandbox_instance(&state, &customer_id).await?;
    require_key(&state, &instance, &headers, "x-api-key").await?;
    let (login, request) = authorized_request(&state, &instance, &request_id).await?;
    if request.detail.is_none() {
        begin_detail(
            &state,
            &instance,
            request,
            &DetailOptions { with_account_identity: false, ..DetailOptions::webhook() },
        )
        .await?;
        return Ok(pending(&request_id));
    }
    detail_reply(&state, &login, &request)
}

#[utoipa::path(operation_id = "flinksGetAccountsSummary", summary = "Flinks sandbox: balances, no transactions", post, path = "/v3/{customer_id}/BankingServices/GetAccountsSummary", tag = "sandbox", security(()), params(("customer_id" = String, Path, description = "the sandbox instance's customer_id (a GUID)"), ("x-api-key" = Option<String>, Header, description = "the instance API key (required in strict mode)")), request_body(content = serde_json::Value, description = "`RequestId`"),
    responses((status = 200, description = "the GetAccountsSummary answer", body = serde_json::Value), (status = 400, description = "Flinks-style failure `{HttpStatusCode, FlinksCode, Message}`: an invalid request, no sandbox instance with this customer id, or a RequestId that does not exist or expired", body = serde_json::Value), (status = 401, description = "Flinks-style failure: the key header is missing or wrong (strict mode), or the login refused", body = serde_json::Value)))]
pub async fn get_accounts_summary(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let instance = sandbox_instance(&state, &customer_id).await?;
    require_key(&state, &instance, &headers, "x-api-key").await?;
    let body = lenient_body(&bytes)?;
    let request_id = text(&body, "requestid").ok_or_else(|| invalid("RequestId is required"))?;
    let (login, request) = authorized_request(&state, &instance, &request_id).await?;
    Ok(Json(data::accounts_summary(&connection(&login, &request)?)).into_response())
}

/// The query of the simulated Connect redirect.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectQuery {
    institution: String,
    username: String,
    password: String,
    redirect_url: String,
    tag: Option<String>,
    security_answer: Option<String>,
    demo: Option<bool>,
}

/// What Flinks Connect does behind its iframe: log in, then send the browser to
/// `redirectUrl?loginId=…&institution=…&tag=…`.
#[utoipa::path(operation_id = "flinksConnect", summary = "Flinks sandbox: what Connect does behind its iframe, then a redirect", get, path = "/sandbox/{customer_id}/connect", tag = "sandbox", security(()), params(("customer_id" = String, Path, description = "the sandbox instance's customer_id (a GUID)"), ("institution" = String, Query), ("username" = String, Query), ("password" = String, Query), ("redirectUrl" = String, Query, description = "http(s) URL the browser is sent to with `loginId`, `institution` and `tag`"), ("tag" = Option<String>, Query), ("securityAnswer" = Option<String>, Query), ("demo" = Option<bool>, Query)),
    responses((status = 303, description = "to `redirectUrl?loginId=…&institution=…&tag=…`"), (status = 400, description = "Flinks-style failure `{HttpStatusCode, FlinksCode, Message}`: an invalid request, no sandbox instance with this customer id, or a RequestId that does not exist or expired", body = serde_json::Value), (status = 401, description = "Flinks-style failure: the key header is missing or wrong (strict mode), or the login refused", body = serde_json::Value)))]
pub async fn connect(
    State(state): State<AppState>,
    Path(customer_id): Path<String>,
    Query(query): Query<ConnectQuery>,
) -> Reply {
    let instance = sandbox_instance(&state, &customer_id).await?;
    let mut redirect = url::Url::parse(&query.redirect_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| invalid("redirectUrl must be an absolute http(s) URL"))?;
    let sandbox = &state.sandbox;
    let mut outcome = sandbox
        .authorize_credentials(&instance, &query.institution, &query.username, &query.password, query.tag.clone())
        .await?;
    if let (Authorized::Challenge { request, .. }, Some(answer)) = (&outcome, &query.security_answer) {
        let responses = HashMap::from([(institutions::MFA_PROMPT.to_string(), vec![answer.clone()])]);
        outcome = sandbox.answer_challenge(&instance, &request.request_id.clone(), &responses).await?;
    }
    let Authorized::Done { login, .. } = outcome else {
        return authorize_reply(outcome);
    };
    {
        let mut pairs = redirect.query_pairs_mut();
        pairs.append_pair("loginId", &login.login_id).append_pair("institution", &login.institution);
        if let Some(tag) = &login.tag {
            pairs.append_pair("tag", tag);
        }
        if query.demo == Some(true) {
            pairs.append_pair("demo", "true");
        }
    }
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, redirect.to_string())]).into_response())
}
