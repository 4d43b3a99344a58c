//! Row mapping shared by both stores: the same column names and representations (times as
//! Unix milliseconds, enums as text, event types as a JSON array) in SQLite and PostgreSQL.

use chrono::{DateTime, Utc};
use finhook_core::events::MessageType;
use finhook_core::ids::{AttemptId, DeliveryId, EndpointId, MessageId};
use finhook_core::retry::{Backoff, RetryPolicy};
use sqlx::Row;

use super::sandbox::{RequestState, SandboxLogin, SandboxRequest};
use super::signing::{ClientCertificateInfo, Signing};
use super::{
    AttemptRecord, DeliveryRecord, DeliveryStatus, Endpoint, ErrorClass, Instance, InstanceId, MessageSummary, Mode,
    SandboxSettings, StoreError, StoreResult, SuccessRule,
};

/// The few column types the stores read, for either database.
pub(crate) trait Cols {
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
}

macro_rules! cols_for {
    ($row:ty) => {
        impl Cols for $row {
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(column)
            }
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                self.try_get(column)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(column)
            }
            fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
                self.try_get(column)
            }
            fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
                self.try_get(column)
            }
        }
    };
}

cols_for!(sqlx::sqlite::SqliteRow);
cols_for!(sqlx::postgres::PgRow);

pub(crate) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(crate) fn time_of(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms}")))
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn small(value: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt(format!("{what} {value}")))
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) const INSTANCE_COLUMNS: &str =
    "id, name, customer_id, mode, created_at, sandbox_strict_auth, sandbox_delay_ms, stored_bytes";

pub(crate) const ENDPOINT_COLUMNS: &str =
    "id, instance_id, url, description, event_types, max_attempts, interval_seconds, \
     backoff, success, enabled, auto_disabled_at, signing, client_cert_subject, client_cert_expires_at, certificate, ordering, created_at, updated_at";

pub(crate) fn instance_from(row: &impl Cols) -> StoreResult<Instance> {
    let mode = row.text("mode")?;
    Ok(Instance {
        id: InstanceId(row.int("id")?),
        name: row.text("name")?,
        customer_id: row.text("customer_id")?,
        mode: Mode::parse(&mode).ok_or_else(|| corrupt(format!("mode {mode}")))?,
        created_at: time_of(row.int("created_at")?)?,
        stored_bytes: row.int("stored_bytes")?.max(0).unsigned_abs(),
        sandbox: SandboxSettings {
            strict_auth: row.flag("sandbox_strict_auth")?,
            delay_ms: row.int("sandbox_delay_ms")?.max(0).unsigned_abs(),
        },
    })
}

pub(crate) fn event_types_to_json(types: &Option<Vec<MessageType>>) -> Option<String> {
    types.as_ref().map(|types| {
        let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        serde_json::Value::from(names).to_string()
    })
}

pub(crate) fn event_types_from_json(text: Option<String>) -> StoreResult<Option<Vec<MessageType>>> {
    let Some(text) = text else { return Ok(None) };
    let names: Vec<String> = serde_json::from_str(&text).map_err(corrupt)?;
    names
        .iter()
        .map(|name| MessageType::parse(name).ok_or_else(|| corrupt(format!("event type {name}"))))
        .collect::<StoreResult<Vec<_>>>()
        .map(Some)
}

pub(crate) fn backoff_str(backoff: Backoff) -> &'static str {
    match backoff {
        Backoff::Fixed => "fixed",
        Backoff::Exponential => "exponential",
    }
}

fn policy_from(row: &impl Cols) -> StoreResult<(RetryPolicy, SuccessRule)> {
    let backoff = match row.text("backoff")?.as_str() {
        "fixed" => Backoff::Fixed,
        "exponential" => Backoff::Exponential,
        other => return Err(corrupt(format!("backoff {other}"))),
    };
    let success = match row.text("success")?.as_str() {
        "exactly_200" => SuccessRule::Exactly200,
        "any_2xx" => SuccessRule::Any2xx,
        other => return Err(corrupt(format!("success rule {other}"))),
    };
    let retry = RetryPolicy {
        max_attempts: small(row.int("max_attempts")?, "max_attempts")?,
        interval_seconds: small(row.int("interval_seconds")?, "interval_seconds")?,
        backoff,
    };
    Ok((retry, success))
}

pub(crate) fn endpoint_from(row: &impl Cols) -> StoreResult<Endpoint> {
    let (retry, success) = policy_from(row)?;
    Ok(Endpoint {
        id: EndpointId::parse(&row.text("id")?).map_err(corrupt)?,
        instance_id: InstanceId(row.int("instance_id")?),
        url: row.text("url")?,
        description: row.opt_text("description")?,
        event_types: event_types_from_json(row.opt_text("event_types")?)?,
        retry,
        success,
        enabled: row.flag("enabled")?,
        auto_disabled_at: row.opt_int("auto_disabled_at")?.map(time_of).transpose()?,
        signing: {
            let text = row.text("signing")?;
            Signing::parse(&text).ok_or_else(|| corrupt(format!("unknown signing {text:?}")))?
        },
        client_certificate: match (row.opt_text("client_cert_subject")?, row.opt_int("client_cert_expires_at")?) {
            (Some(subject), Some(expires_at)) => {
                Some(ClientCertificateInfo { subject, expires_at: time_of(expires_at)? })
            }
            _ => None,
        },
        certificate: row
            .opt_text("certificate")?
            .map(|json| serde_json::from_str(&json).map_err(|e| corrupt(format!("a certificate report: {e}"))))
            .transpose()?,
        ordering: {
            let text = row.text("ordering")?;
            crate::store::DeliveryOrder::parse(&text).ok_or_else(|| corrupt(format!("unknown ordering {text:?}")))?
        },
        created_at: time_of(row.int("created_at")?)?,
        updated_at: time_of(row.int("updated_at")?)?,
    })
}

pub(crate) fn summary_from(row: &impl Cols) -> StoreResult<MessageSummary> {
    let response_type = row.text("response_type")?;
    Ok(MessageSummary {
        id: MessageId::parse(&row.text("id")?).map_err(corrupt)?,
        response_type: MessageType::parse(&response_type).ok_or_else(|| corrupt(&response_type))?,
        login_id: row.opt_text("login_id")?,
        request_id: row.opt_text("request_id")?,
        tag: row.opt_text("tag")?,
        created_at: time_of(row.int("created_at")?)?,
        delivery_statuses: Vec::new(),
    })
}

/// A `list_messages` row: a summary plus `statuses`, its deliveries' statuses joined by commas.
pub(crate) fn listed_from(row: &impl Cols) -> StoreResult<MessageSummary> {
    let mut summary = summary_from(row)?;
    summary.delivery_statuses = row
        .opt_text("statuses")?
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| DeliveryStatus::parse(s).ok_or_else(|| corrupt(s)))
        .collect::<StoreResult<_>>()?;
    Ok(summary)
}

pub(crate) fn attempt_from(row: &impl Cols) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        id: AttemptId::parse(&row.text("id")?).map_err(corrupt)?,
        attempt_number: small(row.int("attempt_number")?, "attempt_number")?,
        started_at: time_of(row.int("started_at")?)?,
        latency_ms: row.int("latency_ms")?.max(0).unsigned_abs(),
        status_code: row.opt_int("status_code")?.map(|code| u16::try_from(code).map_err(corrupt)).transpose()?,
        error_class: row
            .opt_text("error_class")?
            .map(|class| ErrorClass::parse(&class).ok_or_else(|| corrupt(format!("error class {class:?}"))))
            .transpose()?,
        error_detail: row.opt_text("error_detail")?,
        response_excerpt: row.opt_text("response_excerpt")?,
        response_bytes: row.opt_int("response_bytes")?.map(|n| n.max(0).unsigned_abs()),
        succeeded: row.flag("succeeded")?,
    })
}

/// A delivery row (`id, endpoint_id, status, attempts_made, next_attempt_at, created_at`),
/// before its attempts are attached.
pub(crate) fn delivery_from(row: &impl Cols) -> StoreResult<DeliveryRecord> {
    let status = row.text("status")?;
    Ok(DeliveryRecord {
        id: DeliveryId::parse(&row.text("id")?).map_err(corrupt)?,
        endpoint_id: EndpointId::parse(&row.text("endpoint_id")?).map_err(corrupt)?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt(&status))?,
        attempts_made: small(row.int("attempts_made")?, "attempts_made")?,
        next_attempt_at: row.opt_int("next_attempt_at")?.map(time_of).transpose()?,
        created_at: time_of(row.int("created_at")?)?,
        superseded: row.flag("superseded")?,
        sequence: row.opt_int("sequence")?.map(u64::try_from).transpose().map_err(corrupt)?,
        attempts: Vec::new(),
    })
}

pub(crate) fn login_from(row: &impl Cols) -> StoreResult<SandboxLogin> {
    Ok(SandboxLogin {
        login_id: row.text("login_id")?,
        instance_id: InstanceId(row.int("instance_id")?),
        institution: row.text("institution")?,
        username: row.text("username")?,
        tag: row.opt_text("tag")?,
        created_at: time_of(row.int("created_at")?)?,
    })
}

pub(crate) fn request_from(row: &impl Cols) -> StoreResult<SandboxRequest> {
    let state = match row.text("state")?.as_str() {
        "mfa_pending" => RequestState::MfaPending,
        "authorized" => RequestState::Authorized,
        other => return Err(corrupt(format!("sandbox request state {other}"))),
    };
    Ok(SandboxRequest {
        request_id: row.text("request_id")?,
        instance_id: InstanceId(row.int("instance_id")?),
        login_id: row.text("login_id")?,
        state,
        created_at: time_of(row.int("created_at")?)?,
        detail: row.opt_text("detail")?,
        ready_at: row.opt_int("ready_at")?.map(time_of).transpose()?,
        callbacks_pending: row.flag("callbacks_pending")?,
    })
}
