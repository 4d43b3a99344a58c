//! The catch-up feed in the dashboard: what the instance's endpoints still wait for, oldest
//! first, page by page, with the cursor a receiver resumes from (`finhook listen
//! --catch-up-from`, or `GET /v1/instances/{name}/feed?since=`).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use finhook_core::ids::MessageId;
use serde::Deserialize;

use super::pages::{caller_at, failure, render, time};
use crate::app::AppState;
use crate::http::{ApiError, Caller};
use crate::store::feed::FeedQuery;

const PAGE: u32 = 20;

struct FeedRow {
    id: String,
    response_type: &'static str,
    login_id: String,
    created_at: String,
    statuses: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "feed.html")]
struct FeedPage {
    signed_in: bool,
    name: String,
    rows: Vec<FeedRow>,
    /// Where the next page starts (the cursor to keep), if the feed has one yet.
    cursor: Option<String>,
    /// More has settled past the cursor.
    more: bool,
}

#[derive(Deserialize)]
pub struct FeedParams {
    since: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    uri: axum::extract::OriginalUri,
    jar: CookieJar,
    Path(name): Path<String>,
    Query(params): Query<FeedParams>,
) -> Response {
    let caller = match caller_at(&state, &jar, Some(&uri.0)).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    match page(&state, caller, &name, params).await {
        Ok(page) => render(&page),
        Err(error) => failure(error),
    }
}

async fn page(state: &AppState, caller: Caller, name: &str, params: FeedParams) -> Result<FeedPage, ApiError> {
    let instance = caller.instance(state, name).await?;
    let after = params
        .since
        .filter(|since| !since.trim().is_empty())
        .map(|since| MessageId::parse(since.trim()).map_err(|_| ApiError::validation("since", "is not a feed cursor")))
        .transpose()?;
    let query = FeedQuery { after, undelivered: true, endpoint: None, login_id: None, limit: PAGE };
    let found = state.store.feed(instance.id, &query, state.clock.now()).await?;
    let mut rows = Vec::with_capacity(found.messages.len());
    for id in &found.messages {
        if let Some(detail) = state.store.message(instance.id, id).await? {
            let current = detail.deliveries.iter().filter(|d| !d.superseded);
            rows.push(FeedRow {
                id: id.to_string(),
                response_type: detail.summary.response_type.as_str(),
                login_id: detail.summary.login_id.unwrap_or_default(),
                created_at: time(detail.summary.created_at),
                statuses: current.map(|d| d.status.as_str()).collect(),
            });
        }
    }
    Ok(FeedPage {
        signed_in: true,
        name: instance.name,
        rows,
        cursor: found.cursor.map(|c| c.to_string()),
        more: found.more,
    })
}
