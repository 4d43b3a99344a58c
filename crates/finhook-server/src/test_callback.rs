//! A test callback: a synthetic Flinks callback of a type the endpoint takes, stored and
//! sent to that endpoint alone (no other endpoint of the instance gets it), signed and
//! retried like any other. Its `Tag` is [`TEST_TAG`] and its `LoginId` a fresh UUID, so a
//! receiver can tell it from customer data and it never conciliates with a real login.

use chrono::{DateTime, Utc};
use finhook_core::events::MessageType;
use finhook_core::flinks::{validate_callback, ParseLimits, ResponseType};
use finhook_core::ids::{DeliveryId, MessageId};

use crate::delivery::handoff::Dispatch;
use crate::delivery::Body;
use crate::ingest::new_message;
use crate::sandbox::banking::DetailOptions;
use crate::sandbox::data::{self, Connection};
use crate::sandbox::institutions;
use crate::store::{Endpoint, IngestOutcome, Store, StoreError};

/// The `Tag` of every test callback.
pub const TEST_TAG: &str = "finhook-test";

#[derive(Debug, thiserror::Error)]
pub enum TestCallbackError {
    #[error("this endpoint takes only operational events (its event_types name no callback type), so there is no callback to test it with")]
    OnlyEvents,
    #[error("the endpoint no longer exists")]
    EndpointGone,
    #[error("the test callback could not be built: {0}")]
    Build(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSent {
    pub message_id: MessageId,
    pub delivery_id: DeliveryId,
    pub response_type: ResponseType,
}

/// The callback type a test of `endpoint` uses: KYC when it takes every callback, else the
/// first callback type its `event_types` name.
pub fn test_type(endpoint: &Endpoint) -> Option<ResponseType> {
    ResponseType::ALL.into_iter().find(|t| endpoint.subscribes_to(MessageType::Callback(*t)))
}

/// The body of a test callback of `response_type`, as of `now`, for a fresh LoginId.
pub fn body(response_type: ResponseType, now: DateTime<Utc>) -> Result<Vec<u8>, TestCallbackError> {
    body_for(response_type, &uuid::Uuid::new_v4().to_string(), now)
}

/// [`body`] for a given LoginId (the probe sends one login's three callbacks).
pub fn body_for(response_type: ResponseType, login_id: &str, now: DateTime<Utc>) -> Result<Vec<u8>, TestCallbackError> {
    let code = if response_type == ResponseType::Investments { "TundraWealth" } else { "FlinksCapital" };
    let institution = institutions::find(code).ok_or_else(|| TestCallbackError::Build(format!("no {code}")))?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let connection = Connection {
        institution,
        login_id,
        request_id: &request_id,
        username: "finhook-test",
        tag: Some(TEST_TAG),
        as_of: now,
    };
    Ok(match response_type {
        ResponseType::Kyc => data::as_callback(&data::kyc(&connection), response_type),
        ResponseType::GetAccountsDetail => {
            data::as_callback(&data::accounts_detail(&connection, &DetailOptions::webhook()), response_type)
        }
        ResponseType::Investments => {
            let investments = data::investments(&connection)
                .ok_or_else(|| TestCallbackError::Build(format!("{code} has no investment accounts")))?;
            data::as_callback(&investments, response_type)
        }
    })
}

/// Stores a test callback for `endpoint` alone and hands it to the worker; returns once it
/// is committed.
pub async fn send(
    store: &dyn Store,
    dispatch: &Dispatch,
    endpoint: &Endpoint,
    now: DateTime<Utc>,
) -> Result<TestSent, TestCallbackError> {
    let response_type = test_type(endpoint).ok_or(TestCallbackError::OnlyEvents)?;
    let body = bytes::Bytes::from(body(response_type, now)?);
    // The same check an ingest makes: what is sent is a valid callback, keys and all.
    let keys = validate_callback(&body, ParseLimits::default()).map_err(|e| TestCallbackError::Build(e.to_string()))?;
    let message = new_message(endpoint.instance_id, &body, keys, None, now);
    let body = Body::hashed(body, &message.body_sha256);
    match store.ingest_to(message, &endpoint.id).await? {
        Some(IngestOutcome::Created { message_id, deliveries }) => {
            dispatch.hand_off(&message_id, &body, &deliveries);
            let delivery_id = deliveries.into_iter().next().ok_or(TestCallbackError::EndpointGone)?.id;
            Ok(TestSent { message_id, delivery_id, response_type })
        }
        _ => Err(TestCallbackError::EndpointGone),
    }
}

/// A GetAccountsDetail test callback of at least `bytes` (its first account's transactions
/// repeated), for a given LoginId: what a year of a busy account's history weighs.
pub fn large_accounts_detail(login_id: &str, now: DateTime<Utc>, bytes: usize) -> Result<Vec<u8>, TestCallbackError> {
    let base = body_for(ResponseType::GetAccountsDetail, login_id, now)?;
    let mut callback: serde_json::Value =
        serde_json::from_slice(&base).map_err(|e| TestCallbackError::Build(e.to_string()))?;
    let transactions = callback
        .pointer_mut("/Accounts/0/Transactions")
        .and_then(serde_json::Value::as_array_mut)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TestCallbackError::Build("the first account has no transactions".into()))?;
    let sample = transactions.clone();
    let each = serde_json::to_vec(&sample).map_or(1, |v| v.len().max(1)) / sample.len();
    let wanted = bytes.saturating_sub(base.len()) / each.max(1) + 1;
    transactions.extend(sample.iter().cycle().take(wanted).cloned());
    serde_json::to_vec(&callback).map_err(|e| TestCallbackError::Build(e.to_string()))
}
