//! The receiver as an axum router: any `POST` is a webhook; `GET /logins` and
//! `GET /logins/{login_id}` give the conciliation in JSON, `GET /` the same for people.

use std::fmt;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use finhook_core::events::{EventBody, EventType};
use finhook_core::flinks::{parse_callback, CallbackError, CallbackKeys, ParseLimits, ResponseType};
use finhook_core::signing::{VerifyError, WEBHOOK_ID};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sha2::{Digest, Sha256};

use crate::forward::{ForwardError, Forwarder};
use crate::html;
use crate::store::{NewCallback, NewEvent, ReceiverStore, StoreError};
use crate::verify::Verifier;

/// The default largest webhook body: the same 32 MiB the finhook server accepts.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The outcome of one received webhook, for the terminal or a log.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub at: DateTime<Utc>,
    pub response_type: Option<ResponseType>,
    /// Set instead of `response_type` for one of finhook's operational events.
    pub event: Option<EventType>,
    pub login_id: Option<String>,
    pub tag: Option<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Duplicate,
    Rejected { status: u16, reason: String },
}

impl Receipt {
    /// A callback's receipt: its keys (if it could be read that far) and the verdict.
    pub(crate) fn of_callback(at: DateTime<Utc>, keys: Option<CallbackKeys>, verdict: Verdict) -> Self {
        let (response_type, login_id, tag) = match keys {
            Some(keys) => (Some(keys.response_type), keys.login_id, keys.tag),
            None => (None, None, None),
        };
        Self { at, response_type, event: None, login_id, tag, verdict }
    }

    /// An operational event's receipt.
    pub(crate) fn of_event(at: DateTime<Utc>, event: EventType, verdict: Verdict) -> Self {
        Self { at, response_type: None, event: Some(event), login_id: None, tag: None, verdict }
    }
}

impl Verdict {
    /// Accepted, or a duplicate of one stored before.
    pub(crate) fn stored(duplicate: bool) -> Self {
        if duplicate {
            Self::Duplicate
        } else {
            Self::Accepted
        }
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = match &self.verdict {
            Verdict::Accepted => "accepted".to_string(),
            Verdict::Duplicate => "duplicate (already stored)".to_string(),
            Verdict::Rejected { status, reason } => format!("rejected {status}: {}", inert(reason)),
        };
        write!(
            f,
            "{}  {:<17}  LoginId {:<36}  Tag {:<20}  {}",
            self.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.response_type.map(|t| t.as_str()).or(self.event.map(EventType::as_str)).unwrap_or("-"),
            self.login_id.as_deref().map_or_else(|| "-".to_string(), inert),
            self.tag.as_deref().map_or_else(|| "-".to_string(), inert),
            verdict
        )
    }
}

/// Sender-controlled text (even a rejected webhook's) made inert, so it cannot forge or
/// hide a line or drive the terminal.
fn inert(text: &str) -> String {
    finhook_core::text::inert(text).into_owned()
}

type Reporter = Arc<dyn Fn(&Receipt) + Send + Sync>;
type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Everything the receiver needs; build one and mount [`router`].
#[derive(Clone)]
pub struct Receiver {
    pub(crate) store: ReceiverStore,
    verifier: Verifier,
    pub(crate) forwarder: Option<Forwarder>,
    max_body_bytes: usize,
    pub(crate) limits: ParseLimits,
    pub(crate) now: Now,
    pub(crate) reporter: Option<Reporter>,
    pub(crate) pages: crate::pages::Pages,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("verifier", &self.verifier)
            .field("forwarder", &self.forwarder)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    pub fn new(store: ReceiverStore, verifier: Verifier) -> Self {
        Self {
            store,
            verifier,
            forwarder: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: ParseLimits::default(),
            now: Arc::new(Utc::now),
            reporter: None,
            pages: crate::pages::Pages::Off,
        }
    }

    /// Who may read the pages (`/`, `/logins`, `/events`, `/view/…`); off by default,
    /// since they show the callbacks' personal data.
    pub fn pages(mut self, pages: crate::pages::Pages) -> Self {
        self.pages = pages;
        self
    }

    pub fn forward_to(mut self, forwarder: Forwarder) -> Self {
        self.forwarder = Some(forwarder);
        self
    }

    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Replaces the clock used to check `webhook-timestamp` (tests).
    pub fn clock(mut self, now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        self.now = Arc::new(now);
        self
    }

    /// Called once per webhook with its outcome (e.g. to print a line).
    pub fn on_receipt(mut self, reporter: impl Fn(&Receipt) + Send + Sync + 'static) -> Self {
        self.reporter = Some(Arc::new(reporter));
        self
    }

    pub fn store(&self) -> &ReceiverStore {
        &self.store
    }

    /// The row a verified callback body becomes, deduplicated on `webhook_id` (else on
    /// Flinks' natural key), and its keys.
    pub(crate) fn new_callback(
        &self,
        webhook_id: Option<String>,
        bytes: &[u8],
        at: DateTime<Utc>,
    ) -> Result<(CallbackKeys, NewCallback), CallbackError> {
        let keys = parse_callback(bytes, self.limits)?.keys();
        let new = NewCallback {
            dedup_key: dedup_key(webhook_id.as_deref(), &keys, bytes),
            webhook_id,
            response_type: keys.response_type,
            login_id: keys.login_id.clone(),
            request_id: keys.request_id.clone(),
            tag: keys.tag.clone(),
            received_at: at,
            body: bytes.to_vec(),
            forwarded: self.forwarder.is_none(),
        };
        Ok((keys, new))
    }

    /// The row one of finhook's verified operational events becomes, deduplicated on
    /// `webhook_id` (else on the body's hash); `None` for an event of no known type.
    pub(crate) fn new_event(
        &self,
        webhook_id: Option<String>,
        event: EventBody,
        bytes: &[u8],
        at: DateTime<Utc>,
    ) -> Option<(EventType, NewEvent)> {
        let event_type = event.event_type()?;
        let dedup_key = match &webhook_id {
            Some(id) => format!("wh:{id}"),
            None => format!("ev:{}", finhook_core::secret::hex(&Sha256::digest(bytes))),
        };
        let forwarded = self.forwarder.is_none();
        Some((event_type, NewEvent { dedup_key, webhook_id, event, received_at: at, body: bytes.to_vec(), forwarded }))
    }

    /// Tells the reporter (the CLI's line per webhook), if there is one.
    pub(crate) fn report(&self, receipt: &Receipt) {
        if let Some(reporter) = &self.reporter {
            reporter(receipt);
        }
    }
}

/// Why a webhook was not acknowledged with 200.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body could not be read")]
    BodyRead,
    #[error("signature check failed: {0}")]
    Signature(#[from] VerifyError),
    #[error("not a callback: {0}")]
    NotACallback(#[from] CallbackError),
    #[error("stored, but not accepted by the app: {0}")]
    Forward(#[from] ForwardError),
    #[error("could not store the callback")]
    Store(#[from] StoreError),
    /// The sender's public keys could not be had; 503 so that it retries.
    #[error("the sender's public keys are not available: {0}")]
    Keys(#[source] crate::jwks::JwksError),
}

impl ReceiveError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead | Self::NotACallback(_) => StatusCode::BAD_REQUEST,
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            // 5xx on purpose: the sender must retry until the app has it.
            Self::Forward(_) => StatusCode::BAD_GATEWAY,
            Self::Store(_) | Self::Keys(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::NotACallback(CallbackError::Invalid(errors)) => {
                let first = errors.first().map(|e| format!("{} {}", e.path, e.message)).unwrap_or_default();
                format!("not a callback: {first}")
            }
            Self::Store(_) => "the callback could not be stored; retry".to_string(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ReceiveError {
    fn into_response(self) -> Response {
        if let Self::Store(error) = &self {
            tracing::error!(error = ?error, "receiver store failure");
        }
        let status = self.status();
        let body = serde_json::json!({
            "type": "urn:finhook:problem:receiver",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.detail(),
        });
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// The receiver's routes.
pub fn router(receiver: Receiver) -> Router {
    Router::new()
        .route("/logins", get(list_logins))
        .route("/events", get(list_events))
        .route("/logins/{login_id}", get(show_login))
        .route("/", get(html::index).post(receive))
        .route("/view/{login_id}", get(html::login))
        .route("/ui", get(crate::pages::open))
        .fallback(fallback)
        .with_state(receiver)
}

/// Webhooks may be sent to any path.
async fn fallback(State(receiver): State<Receiver>, request: Request) -> Response {
    if request.method() == Method::POST {
        let (parts, body) = request.into_parts();
        receive(State(receiver), parts.headers, body).await
    } else {
        (StatusCode::NOT_FOUND, "not found: POST webhooks to any path; GET /logins for the conciliation")
            .into_response()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    let at = (receiver.now)();
    let result = accept(&receiver, &headers, body, at).await;
    let (receipt, response) = match result {
        Ok((Received::Callback(keys), duplicate)) => {
            (Receipt::of_callback(at, Some(keys), Verdict::stored(duplicate)), (StatusCode::OK, "ok").into_response())
        }
        Ok((Received::Event(event), duplicate)) => {
            (Receipt::of_event(at, event, Verdict::stored(duplicate)), (StatusCode::OK, "ok").into_response())
        }
        Err((keys, error)) => {
            let verdict = Verdict::Rejected { status: error.status().as_u16(), reason: error.detail() };
            (Receipt::of_callback(at, keys, verdict), error.into_response())
        }
    };
    receiver.report(&receipt);
    response
}

type Rejected = (Option<CallbackKeys>, ReceiveError);

/// What a webhook turned out to be.
enum Received {
    Callback(CallbackKeys),
    /// One of finhook's operational events (sent to endpoints that subscribe to them).
    Event(EventType),
}

/// Read, verify, parse, store, forward: a 200 follows only a durable write (and, with
/// `--forward-to`, the app's acceptance).
async fn accept(
    receiver: &Receiver,
    headers: &HeaderMap,
    body: Body,
    at: DateTime<Utc>,
) -> Result<(Received, bool), Rejected> {
    let limit = receiver.max_body_bytes;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err((None, ReceiveError::TooLarge { limit }))
        }
        Err(_) => return Err((None, ReceiveError::BodyRead)),
    };
    receiver.verifier.prepare(headers).await.map_err(|e| (None, ReceiveError::Keys(e)))?;
    receiver.verifier.verify(headers, &bytes, at.timestamp()).map_err(|e| (None, e.into()))?;
    let webhook_id = headers.get(WEBHOOK_ID).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(event) = EventBody::parse(&bytes) {
        return accept_event(receiver, headers, bytes, webhook_id, event, at).await.map_err(|e| (None, e));
    }
    let (keys, new) = receiver.new_callback(webhook_id, &bytes, at).map_err(|e| (None, e.into()))?;
    let stored = receiver.store.insert(&new).await.map_err(|e| (Some(keys.clone()), e.into()))?;
    if let (Some(forwarder), false) = (&receiver.forwarder, stored.forwarded) {
        forwarder.forward(headers, bytes).await.map_err(|e| (Some(keys.clone()), e.into()))?;
        receiver.store.mark_forwarded(stored.seq).await.map_err(|e| (Some(keys.clone()), e.into()))?;
    }
    Ok((Received::Callback(keys), stored.duplicate))
}

/// Stores (and forwards) a verified operational event, deduplicated on `webhook-id`.
async fn accept_event(
    receiver: &Receiver,
    headers: &HeaderMap,
    bytes: bytes::Bytes,
    webhook_id: Option<String>,
    event: EventBody,
    at: DateTime<Utc>,
) -> Result<(Received, bool), ReceiveError> {
    let (event_type, new) = receiver.new_event(webhook_id, event, &bytes, at).ok_or(ReceiveError::BodyRead)?;
    let stored = receiver.store.insert_event(&new).await?;
    if let (Some(forwarder), false) = (&receiver.forwarder, stored.forwarded) {
        forwarder.forward(headers, bytes).await?;
        receiver.store.mark_event_forwarded(stored.seq).await?;
    }
    Ok((Received::Event(event_type), stored.duplicate))
}

/// `GET /events`: the last 100 operational events received, newest first.
async fn list_events(State(receiver): State<Receiver>, _access: crate::pages::PageAccess) -> Response {
    match receiver.store.events(100).await {
        Ok(events) => Json(events).into_response(),
        Err(error) => ReceiveError::Store(error).into_response(),
    }
}

/// `wh:<webhook-id>` when the sender gives one; else Flinks' natural key
/// `fl:<LoginId>:<ResponseType>:<RequestId>` (with the body hash when there is no RequestId).
fn dedup_key(webhook_id: Option<&str>, keys: &CallbackKeys, body: &[u8]) -> String {
    if let Some(id) = webhook_id {
        return format!("wh:{id}");
    }
    let request = match &keys.request_id {
        Some(request) => request.clone(),
        None => finhook_core::secret::hex(&Sha256::digest(body)),
    };
    format!("fl:{}:{}:{request}", keys.login_id.as_deref().unwrap_or("-"), keys.response_type)
}

async fn list_logins(State(receiver): State<Receiver>, _access: crate::pages::PageAccess) -> Response {
    match receiver.store.logins().await {
        Ok(logins) => Json(logins).into_response(),
        Err(error) => ReceiveError::Store(error).into_response(),
    }
}

async fn show_login(
    State(receiver): State<Receiver>,
    _access: crate::pages::PageAccess,
    Path(login_id): Path<String>,
) -> Response {
    match receiver.store.login(&login_id).await {
        Ok(Some(login)) => Json(login).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, Json(serde_json::json!({ "detail": "no callback names this LoginId" })))
            .into_response(),
        Err(error) => ReceiveError::Store(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_reads_as_one_line() {
        let receipt = Receipt {
            at: DateTime::from_timestamp(1_773_511_200, 0).unwrap_or_default(),
            response_type: Some(ResponseType::Kyc),
            event: None,
            login_id: Some("c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e".into()),
            tag: Some("applicant=APP-20931".into()),
            verdict: Verdict::Rejected { status: 401, reason: "bad signature".into() },
        };
        let line = receipt.to_string();
        assert!(line.starts_with("2026-03-14T18:00:00Z  KYC"), "{line}");
        assert!(line.contains("LoginId c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e"), "{line}");
        assert!(line.contains("Tag applicant=APP-20931") && line.ends_with("rejected 401: bad signature"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn sender_text_cannot_forge_a_line_or_drive_the_terminal() {
        let forged = "x\r\n2026-03-14T18:00:00Z  KYC  LoginId ok  accepted\u{1b}]0;pwned\u{7}\u{1b}[2K\0\u{202e}";
        let receipt = Receipt {
            at: DateTime::from_timestamp(1_773_511_200, 0).unwrap_or_default(),
            response_type: None,
            event: None,
            login_id: Some(forged.into()),
            tag: Some(forged.into()),
            verdict: Verdict::Rejected { status: 400, reason: forged.into() },
        };
        let line = receipt.to_string();
        assert!(!line.chars().any(|c| c.is_control() || c == '\u{202e}'), "{line:?}");
        assert!(line.contains("LoginId x\\r\\n2026") && line.contains("\\u{1b}]0;pwned"), "{line}");
    }
}
