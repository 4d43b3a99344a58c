//! What the sandbox keeps: its logins (LoginIds never expire), requests (RequestIds, with
//! their MFA state and GetAccountsDetail progress) and single-use authorize tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Instance, InstanceId, StoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLogin {
    pub login_id: String,
    pub instance_id: InstanceId,
    pub institution: String,
    pub username: String,
    pub tag: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for the answer to a security challenge.
    MfaPending,
    Authorized,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::MfaPending => "mfa_pending",
            RequestState::Authorized => "authorized",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRequest {
    pub request_id: String,
    pub instance_id: InstanceId,
    pub login_id: String,
    pub state: RequestState,
    /// The data of this request is "as of" this moment.
    pub created_at: DateTime<Utc>,
    /// The GetAccountsDetail options of the first call, as JSON.
    pub detail: Option<String>,
    pub ready_at: Option<DateTime<Utc>>,
    /// The connection's callbacks are promised but not all ingested yet.
    pub callbacks_pending: bool,
}

/// Sandbox persistence, a part of every [`super::Store`].
#[async_trait]
pub trait SandboxStore: Send + Sync {
    async fn instance_by_customer_id(&self, customer_id: &str) -> StoreResult<Option<Instance>>;
    async fn set_sandbox_settings(&self, instance: InstanceId, strict_auth: bool, delay_ms: u64) -> StoreResult<()>;
    async fn put_sandbox_token(&self, instance: InstanceId, token: &str, expires_at: DateTime<Utc>) -> StoreResult<()>;
    /// Marks the token used if it is this instance's, unused and unexpired; says whether it was.
    async fn use_sandbox_token(&self, instance: InstanceId, token: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    async fn put_sandbox_login(&self, login: &SandboxLogin) -> StoreResult<()>;
    async fn sandbox_login(&self, instance: InstanceId, login_id: &str) -> StoreResult<Option<SandboxLogin>>;
    async fn put_sandbox_request(&self, request: &SandboxRequest) -> StoreResult<()>;
    async fn sandbox_request(&self, instance: InstanceId, request_id: &str) -> StoreResult<Option<SandboxRequest>>;
    /// Every request, of any instance, whose callbacks are still owed, with its login.
    async fn pending_sandbox_callbacks(&self) -> StoreResult<Vec<(SandboxLogin, SandboxRequest)>>;
}
