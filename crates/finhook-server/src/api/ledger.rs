//! `GET /v1/instances/{name}/ledger`: an instance's delivery ledger as JSON lines, oldest
//! first, for `finhook ledger verify` or any SHA-256 implementation to check offline.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::app::AppState;
use crate::http::{ApiError, Caller, Problem};
use crate::store::InstanceId;

/// Entries read from the store per page of the stream.
const PAGE: usize = 1000;

/// The response headers that name the chain head the export ends at.
pub const HEAD_SEQ: &str = "finhook-ledger-seq";
pub const HEAD_HASH: &str = "finhook-ledger-head";

#[derive(Debug, Deserialize)]
pub struct LedgerQuery {
    /// RFC 3339: start at the first entry (in chain order) of an attempt made at or after it.
    since: Option<String>,
    /// Start after this seq: to carry on from the last line of an earlier export.
    after_seq: Option<u64>,
}

#[utoipa::path(operation_id = "exportLedger", summary = "Export an instance's delivery ledger as JSON lines", get, path = "/v1/instances/{name}/ledger", tag = "ledger", params(("name" = String, Path, description = "the instance name"),
        ("since" = Option<String>, Query, description = "RFC 3339; from the first entry of an attempt made at or after it, then every later entry of the chain"),
        ("after_seq" = Option<u64>, Query, description = "from the entry after this seq (not with `since`)")),
    responses((status = 200, description = "one `LedgerEntry` per line, oldest first, up to the head named by the `finhook-ledger-seq` and `finhook-ledger-head` headers (absent while the chain is empty)", content_type = "application/x-ndjson", body = finhook_core::ledger::LedgerEntry),
        (status = 401, description = "no or bad key", body = Problem), (status = 404, description = "unknown, or another instance's", body = Problem), (status = 422, description = "invalid `since` or both `since` and `after_seq`", body = Problem)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(query): Query<LedgerQuery>,
) -> Result<Response, ApiError> {
    let instance = caller.instance(&state, &name).await?;
    let since = query
        .since
        .as_deref()
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| ApiError::validation("since", "must be an RFC 3339 time, such as 2026-11-29T14:02:00Z"))
        })
        .transpose()?;
    if since.is_some() && query.after_seq.is_some() {
        return Err(ApiError::validation("since", "give since or after_seq, not both"));
    }
    // Everything recorded so far is in the export (unless another node is sealing it now).
    crate::ledger::seal_queued(state.store.as_ref()).await?;
    let head = state.store.ledger_head(instance.id).await?;
    let after = match (since, query.after_seq) {
        (Some(since), _) => match state.store.ledger_first_since(instance.id, since).await? {
            Some(first) => first - 1,
            None => u64::MAX, // nothing at or after `since`: an empty export
        },
        (None, after) => after.unwrap_or(0),
    };
    let mut response =
        Body::from_stream(pages(state, instance.id, after, head.as_ref().map_or(0, |h| h.seq))).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/x-ndjson"));
    if let Some(head) = head {
        headers.insert(HEAD_SEQ, head.seq.into());
        if let Ok(hash) = head.hash.parse() {
            headers.insert(HEAD_HASH, hash);
        }
    }
    Ok(response)
}

/// The entries after `after` up to `last`, a page of JSON lines at a time.
fn pages(
    state: AppState,
    instance: InstanceId,
    after: u64,
    last: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, ApiError>> {
    futures_util::stream::try_unfold(after, move |after| {
        let state = state.clone();
        async move {
            if after >= last {
                return Ok(None);
            }
            let limit = PAGE.min(usize::try_from(last - after).unwrap_or(PAGE));
            let entries = state.store.ledger_entries(instance, after, limit).await?;
            let Some(next) = entries.last().map(|entry| entry.seq) else {
                return Ok(None);
            };
            let mut page = Vec::with_capacity(entries.len() * 512);
            for entry in &entries {
                serde_json::to_writer(&mut page, entry)
                    .map_err(|source| ApiError::Internal { what: "write a ledger entry", source: source.into() })?;
                page.push(b'\n');
            }
            Ok(Some((Bytes::from(page), next)))
        }
    })
}
