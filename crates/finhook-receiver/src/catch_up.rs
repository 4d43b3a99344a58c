//! Catching up from finhook's feed: a receiver that was down pulls the callbacks it missed
//! (`GET /v1/instances/{name}/feed`, with the instance's API key), stores each one as if it
//! had arrived as a webhook (deduplicated on its message id, the `webhook-id` finhook sends
//! it under, so a retry arriving later is a duplicate), then acknowledges them
//! (`POST …/feed/ack`) so finhook stops retrying them. Where it stopped is kept in the
//! receiver's store, and the next start resumes there.
//!
//! The feed is read over HTTPS with the instance key, not signed like a webhook: what
//! vouches for each callback is the server's certificate and the key.

use std::fmt;
use std::time::Duration;

use finhook_core::events::EventBody;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::server::{Receipt, Receiver, Verdict};
use crate::store::StoreError;

/// The most pages one catch-up reads (100 callbacks each): a bound on one run.
const MAX_PAGES: usize = 10_000;

/// How long one request to the feed may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a catch-up stopped early. What was stored and acknowledged before stays so.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error("{0:?} is not an http(s) URL")]
    Url(String),
    #[error("could not build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("the feed could not be reached at {url}")]
    Http { url: String, source: reqwest::Error },
    #[error("the server answered {status} at {url}: {detail}")]
    Refused { url: String, status: u16, detail: String },
    #[error("the feed's answer at {url} is not a feed page")]
    Page { url: String, source: serde_json::Error },
    #[error("message {message_id} from the feed is an operational event of a type this receiver does not know")]
    UnknownEvent { message_id: String },
    #[error("message {message_id} from the feed is not a callback")]
    NotACallback { message_id: String, source: finhook_core::flinks::CallbackError },
    #[error("could not store what the feed gave")]
    Store(#[from] StoreError),
    #[error("--forward-to cannot relay what the feed gives (it carries no signature headers)")]
    Forwarding,
}

/// Where to catch up from: a finhook server, an instance and its API key, and optionally
/// the endpoint this receiver is (then only what that endpoint has not had is pulled and
/// acknowledged, never what the instance's other endpoints wait for).
#[derive(Clone)]
pub struct FeedSource {
    feed: reqwest::Url,
    ack: reqwest::Url,
    key: String,
    endpoint: Option<String>,
    client: reqwest::Client,
}

impl fmt::Debug for FeedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedSource").field("feed", &self.feed.as_str()).field("endpoint", &self.endpoint).finish()
    }
}

impl FeedSource {
    /// `server` is the finhook server's base URL (`https://finhook.example.com`).
    pub fn new(server: &str, instance: &str, key: &str, endpoint: Option<&str>) -> Result<Self, CatchUpError> {
        let base = reqwest::Url::parse(server.trim_end_matches('/'))
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| CatchUpError::Url(server.to_string()))?;
        let at = |path: String| base.join(&path).map_err(|_| CatchUpError::Url(server.to_string()));
        let feed = at(format!("/v1/instances/{instance}/feed"))?;
        let ack = at(format!("/v1/instances/{instance}/feed/ack"))?;
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(CatchUpError::Client)?;
        Ok(Self { feed, ack, key: key.to_string(), endpoint: endpoint.map(str::to_string), client })
    }

    /// The name its cursor is kept under.
    fn name(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{} {endpoint}", self.feed),
            None => self.feed.to_string(),
        }
    }

    async fn page(&self, since: Option<&str>) -> Result<FeedPage, CatchUpError> {
        let mut url = self.feed.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("status", "undelivered").append_pair("limit", "100");
            if let Some(since) = since {
                query.append_pair("since", since);
            }
            if let Some(endpoint) = &self.endpoint {
                query.append_pair("endpoint_id", endpoint);
            }
        }
        let text = self.send(self.client.get(url.clone()), &url).await?;
        serde_json::from_str(&text).map_err(|source| CatchUpError::Page { url: url.to_string(), source })
    }

    async fn acknowledge(&self, ids: &[String]) -> Result<(), CatchUpError> {
        let body = serde_json::json!({ "message_ids": ids, "endpoint_id": self.endpoint });
        self.send(self.client.post(self.ack.clone()).json(&body), &self.ack).await.map(drop)
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &reqwest::Url) -> Result<String, CatchUpError> {
        let http = |source| CatchUpError::Http { url: url.to_string(), source };
        let response = request.bearer_auth(&self.key).send().await.map_err(http)?;
        let status = response.status();
        let text = response.text().await.map_err(http)?;
        if !status.is_success() {
            let detail = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|problem| problem["detail"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(CatchUpError::Refused { url: url.to_string(), status: status.as_u16(), detail });
        }
        Ok(text)
    }
}

#[derive(Deserialize)]
struct FeedPage {
    data: Vec<FeedItem>,
    next_cursor: Option<String>,
    has_more: bool,
}

#[derive(Deserialize)]
struct FeedItem {
    id: String,
    /// The callback exactly as finhook stored it.
    payload: Box<RawValue>,
}

/// What a catch-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaughtUp {
    /// Callbacks the feed gave.
    pub pulled: usize,
    /// Of those, the ones this receiver did not have yet.
    pub new: usize,
}

impl Receiver {
    /// Pulls from `source` what this receiver missed, page by page, storing and then
    /// acknowledging each page, until the feed is caught up (to five seconds ago).
    pub async fn catch_up(&self, source: &FeedSource) -> Result<CaughtUp, CatchUpError> {
        if self.forwarder.is_some() {
            return Err(CatchUpError::Forwarding);
        }
        let name = source.name();
        let mut cursor = self.store.catch_up_cursor(&name).await?;
        let mut done = CaughtUp::default();
        for _ in 0..MAX_PAGES {
            let page = source.page(cursor.as_deref()).await?;
            let mut stored = Vec::with_capacity(page.data.len());
            for item in &page.data {
                if self.keep(item).await? {
                    done.new += 1;
                }
                done.pulled += 1;
                stored.push(item.id.clone());
            }
            if !stored.is_empty() {
                source.acknowledge(&stored).await?;
            }
            if let Some(next) = &page.next_cursor {
                self.store.set_catch_up_cursor(&name, next, (self.now)()).await?;
            }
            cursor = page.next_cursor;
            if !page.has_more {
                break;
            }
        }
        Ok(done)
    }

    /// Stores one callback (or operational event) of the feed as a webhook under its
    /// message id would be; whether it was new.
    async fn keep(&self, item: &FeedItem) -> Result<bool, CatchUpError> {
        let at = (self.now)();
        let body = item.payload.get().as_bytes();
        let id = Some(item.id.clone());
        let (receipt, duplicate) = if let Some(event) = EventBody::parse(body) {
            let Some((event_type, new)) = self.new_event(id, event, body, at) else {
                return Err(CatchUpError::UnknownEvent { message_id: item.id.clone() });
            };
            let duplicate = self.store.insert_event(&new).await?.duplicate;
            (Receipt::of_event(at, event_type, Verdict::stored(duplicate)), duplicate)
        } else {
            let (keys, new) = self
                .new_callback(id, body, at)
                .map_err(|source| CatchUpError::NotACallback { message_id: item.id.clone(), source })?;
            let duplicate = self.store.insert(&new).await?.duplicate;
            (Receipt::of_callback(at, Some(keys), Verdict::stored(duplicate)), duplicate)
        };
        self.report(&receipt);
        Ok(!duplicate)
    }
}
