//! Sandbox connections: authorizing (credentials, MFA, cached), and the simulated
//! aggregation that ingests the KYC, GetAccountsDetail and Investments callbacks through
//! the normal ingest path, so they are stored, signed and delivered like any other.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::delivery::handoff::Dispatch;
use chrono::{DateTime, Utc};
use finhook_core::flinks::{ParseLimits, ResponseType};
use finhook_core::ids::MessageId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::banking::DetailOptions;
use super::data::{self, Connection};
use super::institutions::{self, Institution, InstitutionKind};
use crate::clock::Clock;
use crate::ingest::{ingest_callback, IngestError, IngestRequest};
use crate::store::sandbox::{RequestState, SandboxLogin, SandboxRequest};
use crate::store::{Instance, InstanceId, Store, StoreError};

/// Flinks' error codes the sandbox answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlinksCode {
    InvalidLogin,
    InvalidRequest,
    InvalidSecurityResponse,
    RetryLater,
    SessionNonexistent,
    SessionExpired,
    Unauthorized,
    DisabledInstitution,
}

impl FlinksCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidLogin => "INVALID_LOGIN",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::InvalidSecurityResponse => "INVALID_SECURITY_RESPONSE",
            Self::RetryLater => "RETRY_LATER",
            Self::SessionNonexistent => "SESSION_NONEXISTENT",
            Self::SessionExpired => "SESSION_EXPIRED",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::DisabledInstitution => "DISABLED_INSTITUTION",
        }
    }

    /// The HTTP status Flinks pairs with the code (see flinks-reference.md §3.7).
    pub fn status(self) -> u16 {
        match self {
            Self::SessionNonexistent | Self::SessionExpired | Self::InvalidRequest => 400,
            Self::DisabledInstitution => 405,
            _ => 401,
        }
    }
}

/// A Flinks-style failure: `{HttpStatusCode, FlinksCode, Message}`.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{message}")]
    Flinks { code: FlinksCode, message: String, request_id: Option<String> },
    #[error("the sandbox could not store its state")]
    Store(#[from] StoreError),
    #[error("the sandbox could not ingest a callback")]
    Ingest(#[from] IngestError),
}

impl SandboxError {
    pub fn flinks(code: FlinksCode, message: impl Into<String>) -> Self {
        Self::Flinks { code, message: message.into(), request_id: None }
    }
}

/// What a successful Authorize call came to.
#[derive(Debug, Clone)]
pub enum Authorized {
    /// 200: a RequestId for the data endpoints.
    Done { login: SandboxLogin, request: SandboxRequest },
    /// 203: a security challenge must be answered with the RequestId.
    Challenge { login: SandboxLogin, request: SandboxRequest },
}

/// A message the sandbox ingested.
#[derive(Debug, Clone)]
pub struct Sent {
    pub response_type: ResponseType,
    pub message_id: MessageId,
}

/// The sandbox engine; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Where ingest hands new deliveries to the delivery worker.
    pub dispatch: Dispatch,
    pub limits: ParseLimits,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where delayed aggregations run; the [`crate::app::App`] that owns it waits for them
    /// at shutdown.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: a delayed aggregation stops waiting, and its durable promise
    /// is kept by the next start.
    pub stop: CancellationToken,
}

/// The institution of a stored login (stored logins only name known institutions).
pub fn institution_of(login: &SandboxLogin) -> Result<&'static Institution, SandboxError> {
    institutions::find(&login.institution)
        .ok_or_else(|| SandboxError::flinks(FlinksCode::DisabledInstitution, "this institution is no longer offered"))
}

/// The data view of one request.
pub fn connection<'a>(login: &'a SandboxLogin, request: &'a SandboxRequest) -> Result<Connection<'a>, SandboxError> {
    Ok(Connection {
        institution: institution_of(login)?,
        login_id: &login.login_id,
        request_id: &request.request_id,
        username: &login.username,
        tag: login.tag.as_deref(),
        as_of: request.created_at,
    })
}

impl Sandbox {
    fn new_request(&self, login: &SandboxLogin, state: RequestState) -> SandboxRequest {
        SandboxRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            instance_id: login.instance_id,
            login_id: login.login_id.clone(),
            state,
            created_at: self.clock.now(),
            detail: None,
            ready_at: None,
            callbacks_pending: false,
        }
    }

    /// A new login: what Flinks Connect does when a user enters credentials.
    pub async fn authorize_credentials(
        &self,
        instance: &Instance,
        institution: &str,
        username: &str,
        password: &str,
        tag: Option<String>,
    ) -> Result<Authorized, SandboxError> {
        let institution = institutions::find(institution).ok_or_else(|| {
            let known: Vec<&str> = institutions::INSTITUTIONS.iter().map(|i| i.code).collect();
            SandboxError::flinks(
                FlinksCode::InvalidRequest,
                format!("unknown institution {institution:?}; the sandbox offers {}", known.join(", ")),
            )
        })?;
        // The tag comes back in every callback of this login, where ingest checks it; a tag
        // refused there would leave callbacks owed that can never be sent.
        if let Some(tag) = &tag {
            finhook_core::text::check_identifier(tag, finhook_core::text::MAX_TAG_CHARS)
                .map_err(|error| SandboxError::flinks(FlinksCode::InvalidRequest, format!("Tag {error}")))?;
        }
        if username == institutions::USER_RETRY_LATER {
            return Err(SandboxError::flinks(FlinksCode::RetryLater, "the institution is unavailable; retry later"));
        }
        let known_user = username == institutions::USER_OK || username == institutions::USER_MFA;
        if !known_user || password != institutions::SANDBOX_PASSWORD {
            return Err(SandboxError::flinks(FlinksCode::InvalidLogin, "the username or password is incorrect"));
        }
        let login = SandboxLogin {
            login_id: uuid::Uuid::new_v4().to_string(),
            instance_id: instance.id,
            institution: institution.code.to_string(),
            username: username.to_string(),
            tag,
            created_at: self.clock.now(),
        };
        self.store.put_sandbox_login(&login).await?;
        if username == institutions::USER_MFA {
            let request = self.new_request(&login, RequestState::MfaPending);
            self.store.put_sandbox_request(&request).await?;
            return Ok(Authorized::Challenge { login, request });
        }
        let request = self.new_request(&login, RequestState::Authorized);
        self.store.put_sandbox_request(&request).await?;
        self.start_aggregation(instance, &login, &request).await?;
        Ok(Authorized::Done { login, request })
    }

    /// The answer to a security challenge.
    pub async fn answer_challenge(
        &self,
        instance: &Instance,
        request_id: &str,
        responses: &HashMap<String, Vec<String>>,
    ) -> Result<Authorized, SandboxError> {
        let mut request = self.request(instance.id, request_id).await?;
        let login = self.login(instance.id, &request.login_id).await?;
        if request.state == RequestState::Authorized {
            return Ok(Authorized::Done { login, request });
        }
        let answered = responses.iter().any(|(prompt, answers)| {
            prompt == institutions::MFA_PROMPT
                && answers.iter().any(|a| a.trim().eq_ignore_ascii_case(institutions::MFA_ANSWER))
        });
        if !answered {
            return Err(SandboxError::Flinks {
                code: FlinksCode::InvalidSecurityResponse,
                message: format!("the answer to {:?} is incorrect", institutions::MFA_PROMPT),
                request_id: Some(request.request_id),
            });
        }
        request.state = RequestState::Authorized;
        self.store.put_sandbox_request(&request).await?;
        self.start_aggregation(instance, &login, &request).await?;
        Ok(Authorized::Done { login, request })
    }

    /// A returning login: a new RequestId; a live refresh (`MostRecentCached: false`) also
    /// sends the callbacks again.
    pub async fn authorize_login(
        &self,
        instance: &Instance,
        login_id: &str,
        most_recent_cached: bool,
    ) -> Result<Authorized, SandboxError> {
        let login = self
            .store
            .sandbox_login(instance.id, login_id)
            .await?
            .ok_or_else(|| SandboxError::flinks(FlinksCode::InvalidLogin, "no login with this LoginId"))?;
        let request = self.new_request(&login, RequestState::Authorized);
        self.store.put_sandbox_request(&request).await?;
        if !most_recent_cached {
            self.start_aggregation(instance, &login, &request).await?;
        }
        Ok(Authorized::Done { login, request })
    }

    pub async fn request(&self, instance: InstanceId, request_id: &str) -> Result<SandboxRequest, SandboxError> {
        self.store.sandbox_request(instance, request_id).await?.ok_or_else(|| SandboxError::Flinks {
            code: FlinksCode::SessionNonexistent,
            message: "no session with this RequestId; call /Authorize for a new one".to_string(),
            request_id: Some(request_id.to_string()),
        })
    }

    pub async fn login(&self, instance: InstanceId, login_id: &str) -> Result<SandboxLogin, SandboxError> {
        self.store
            .sandbox_login(instance, login_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("sandbox request for unknown login {login_id}")).into())
    }

    /// Sends the callbacks of a finished connection: inline when the instance's delay is
    /// zero (so tests and triggers see them at once), else in the background after it.
    /// The promise is stored first, so a restart resumes what a crash interrupted.
    async fn start_aggregation(
        &self,
        instance: &Instance,
        login: &SandboxLogin,
        request: &SandboxRequest,
    ) -> Result<(), SandboxError> {
        let mut request = request.clone();
        request.callbacks_pending = true;
        self.store.put_sandbox_request(&request).await?;
        let delay = Duration::from_millis(instance.sandbox.delay_ms);
        if delay.is_zero() {
            self.deliver_owed(login, request, None).await?;
            return Ok(());
        }
        let (sandbox, login) = (self.clone(), login.clone());
        self.tasks.spawn(async move {
            let request_id = request.request_id.clone();
            tokio::select! {
                () = sandbox.stop.cancelled() => {
                    tracing::info!(%request_id, "shutting down; this sandbox aggregation resumes at the next start");
                }
                sent = sandbox.deliver_owed(&login, request, Some(delay)) => if let Err(error) = sent {
                    tracing::error!(error = %error, %request_id, "sandbox aggregation failed; it resumes at the next start");
                }
            }
        });
        Ok(())
    }

    /// Sends a request's callbacks, then marks them no longer owed.
    async fn deliver_owed(
        &self,
        login: &SandboxLogin,
        mut request: SandboxRequest,
        pause: Option<Duration>,
    ) -> Result<Vec<Sent>, SandboxError> {
        let sent = self.send_callbacks(login, &request, pause).await?;
        request.callbacks_pending = false;
        // Re-read the row so that GetAccountsDetail progress made meanwhile is kept.
        if let Some(mut current) = self.store.sandbox_request(request.instance_id, &request.request_id).await? {
            current.callbacks_pending = false;
            request = current;
        }
        self.store.put_sandbox_request(&request).await?;
        Ok(sent)
    }

    /// At start-up: sends the callbacks that connections were promised before a stop or a
    /// crash. Idempotency keys make the ones already ingested harmless to send again.
    pub async fn resume_owed_callbacks(&self) -> Result<usize, SandboxError> {
        let owed = self.store.pending_sandbox_callbacks().await?;
        for (login, request) in &owed {
            self.deliver_owed(login, request.clone(), None).await?;
        }
        Ok(owed.len())
    }

    /// Ingests KYC, then GetAccountsDetail, then (for an investment institution)
    /// Investments, waiting `pause` before each when given.
    pub async fn send_callbacks(
        &self,
        login: &SandboxLogin,
        request: &SandboxRequest,
        pause: Option<Duration>,
    ) -> Result<Vec<Sent>, SandboxError> {
        let connection = connection(login, request)?;
        let mut bodies = vec![
            (ResponseType::Kyc, data::as_callback(&data::kyc(&connection), ResponseType::Kyc)),
            (
                ResponseType::GetAccountsDetail,
                data::as_callback(
                    &data::accounts_detail(&connection, &DetailOptions::webhook()),
                    ResponseType::GetAccountsDetail,
                ),
            ),
        ];
        if connection.institution.kind == InstitutionKind::Investment {
            if let Some(wealth) = data::investments(&connection) {
                bodies.push((ResponseType::Investments, data::as_callback(&wealth, ResponseType::Investments)));
            }
        }
        let mut sent = Vec::new();
        for (response_type, body) in bodies {
            if let Some(pause) = pause {
                self.clock.sleep(pause).await;
            }
            sent.push(self.send(login.instance_id, request, response_type, &body).await?);
        }
        Ok(sent)
    }

    /// Ingests one callback of a request, once: the idempotency key makes a repeat harmless.
    pub async fn send(
        &self,
        instance: InstanceId,
        request: &SandboxRequest,
        response_type: ResponseType,
        body: &[u8],
    ) -> Result<Sent, SandboxError> {
        let key = format!("sandbox:{}:{}", request.request_id, response_type.as_str());
        let body = bytes::Bytes::copy_from_slice(body);
        let accepted = ingest_callback(
            self.store.as_ref(),
            &self.dispatch,
            IngestRequest {
                instance,
                body: &body,
                idempotency_key: Some(&key),
                limits: self.limits,
                now: self.clock.now(),
            },
        )
        .await?;
        if !accepted.replayed {
            self.metrics.callback_ingested(response_type.as_str());
        }
        tracing::info!(request_id = %request.request_id, response_type = response_type.as_str(), message = %accepted.message_id, "sandbox callback ingested");
        Ok(Sent { response_type, message_id: accepted.message_id })
    }

    /// The time a request's GetAccountsDetail data is ready, given the instance's delay.
    pub fn ready_at(&self, instance: &Instance) -> DateTime<Utc> {
        self.clock.now() + chrono::Duration::milliseconds(i64::try_from(instance.sandbox.delay_ms).unwrap_or(i64::MAX))
    }
}
