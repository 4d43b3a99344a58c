//! Row mapping for the embedded store: SQLite rows to records, and the column lists.

use chrono::{DateTime, Utc};
use finhook_core::flinks::ResponseType;
use finhook_core::ids::{AttemptId, EndpointId, MessageId};
use finhook_core::retry::{Backoff, RetryPolicy};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::store::{
    AttemptRecord, Endpoint, Instance, InstanceId, MessageSummary, Mode, SandboxSettings, StoreError, StoreResult,
    SuccessRule,
};

pub(super) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub(super) fn time_of(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms}")))
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(super) fn instance_from(row: &SqliteRow) -> StoreResult<Instance> {
    let mode: String = row.try_get("mode")?;
    Ok(Instance {
        id: InstanceId(row.try_get("id")?),
        name: row.try_get("name")?,
        customer_id: row.try_get("customer_id")?,
        mode: Mode::parse(&mode).ok_or_else(|| corrupt(format!("mode {mode}")))?,
        created_at: time_of(row.try_get("created_at")?)?,
        sandbox: SandboxSettings {
            strict_auth: row.try_get("sandbox_strict_auth")?,
            delay_ms: row.try_get::<i64, _>("sandbox_delay_ms")?.max(0).unsigned_abs(),
        },
    })
}

pub(super) const INSTANCE_COLUMNS: &str =
    "id, name, customer_id, mode, created_at, sandbox_strict_auth, sandbox_delay_ms";

pub(super) fn event_types_to_json(types: &Option<Vec<ResponseType>>) -> Option<String> {
    types.as_ref().map(|types| {
        let names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        serde_json::Value::from(names).to_string()
    })
}

pub(super) fn event_types_from_json(text: Option<String>) -> StoreResult<Option<Vec<ResponseType>>> {
    let Some(text) = text else { return Ok(None) };
    let names: Vec<String> = serde_json::from_str(&text).map_err(corrupt)?;
    names
        .iter()
        .map(|name| ResponseType::parse(name).ok_or_else(|| corrupt(format!("event type {name}"))))
        .collect::<StoreResult<Vec<_>>>()
        .map(Some)
}

pub(super) fn backoff_str(backoff: Backoff) -> &'static str {
    match backoff {
        Backoff::Fixed => "fixed",
        Backoff::Exponential => "exponential",
    }
}

pub(super) fn policy_from(row: &SqliteRow) -> StoreResult<(RetryPolicy, SuccessRule)> {
    let backoff = match row.try_get::<String, _>("backoff")?.as_str() {
        "fixed" => Backoff::Fixed,
        "exponential" => Backoff::Exponential,
        other => return Err(corrupt(format!("backoff {other}"))),
    };
    let success = match row.try_get::<String, _>("success")?.as_str() {
        "exactly_200" => SuccessRule::Exactly200,
        "any_2xx" => SuccessRule::Any2xx,
        other => return Err(corrupt(format!("success rule {other}"))),
    };
    let retry = RetryPolicy {
        max_attempts: row.try_get("max_attempts")?,
        interval_seconds: row.try_get("interval_seconds")?,
        backoff,
    };
    Ok((retry, success))
}

pub(super) fn endpoint_from(row: &SqliteRow) -> StoreResult<Endpoint> {
    let (retry, success) = policy_from(row)?;
    Ok(Endpoint {
        id: EndpointId::parse(row.try_get("id")?).map_err(corrupt)?,
        instance_id: InstanceId(row.try_get("instance_id")?),
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        event_types: event_types_from_json(row.try_get("event_types")?)?,
        retry,
        success,
        enabled: row.try_get("enabled")?,
        created_at: time_of(row.try_get("created_at")?)?,
        updated_at: time_of(row.try_get("updated_at")?)?,
    })
}

pub(super) fn summary_from(row: &SqliteRow) -> StoreResult<MessageSummary> {
    let response_type: String = row.try_get("response_type")?;
    Ok(MessageSummary {
        id: MessageId::parse(row.try_get("id")?).map_err(corrupt)?,
        response_type: ResponseType::parse(&response_type).ok_or_else(|| corrupt(&response_type))?,
        login_id: row.try_get("login_id")?,
        request_id: row.try_get("request_id")?,
        tag: row.try_get("tag")?,
        created_at: time_of(row.try_get("created_at")?)?,
    })
}

pub(super) fn attempt_from(row: &SqliteRow) -> StoreResult<AttemptRecord> {
    Ok(AttemptRecord {
        id: AttemptId::parse(row.try_get("id")?).map_err(corrupt)?,
        attempt_number: row.try_get("attempt_number")?,
        started_at: time_of(row.try_get("started_at")?)?,
        latency_ms: row.try_get::<i64, _>("latency_ms")?.max(0).unsigned_abs(),
        status_code: row.try_get("status_code")?,
        error_class: row.try_get("error_class")?,
        error_detail: row.try_get("error_detail")?,
        response_excerpt: row.try_get("response_excerpt")?,
        succeeded: row.try_get("succeeded")?,
    })
}

pub(super) const ENDPOINT_COLUMNS: &str =
    "id, instance_id, url, description, event_types, max_attempts, interval_seconds, \
     backoff, success, enabled, created_at, updated_at";
