//! Who may read the receiver's pages (`/`, `/logins`, `/events`, `/view/…`): they show the
//! callbacks' personal data, so they are off unless the embedding app opens them, and
//! `finhook listen --ui` guards them with a token printed at start.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use crate::Receiver;

/// The cookie `/ui?token=…` sets, so a browser's later pages need no token in their links.
const COOKIE: &str = "finhook_listen_ui";

/// Who may read the pages.
#[derive(Clone, Default)]
pub enum Pages {
    /// Nobody: they answer 404 (the default).
    #[default]
    Off,
    /// Anyone who reaches the receiver (behind the embedding app's own access control).
    Open,
    /// Whoever presents this token: `Authorization: Bearer <token>`, `?token=<token>`, or
    /// the cookie that `/ui?token=<token>` sets.
    Token(Arc<str>),
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pages::Off => "Off",
            Pages::Open => "Open",
            Pages::Token(_) => "Token(<redacted>)",
        })
    }
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// What the request presents as the token, wherever it carries it.
fn presented(parts: &Parts) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(bearer) =
        parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        found.push(bearer.trim().to_string());
    }
    for cookies in parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        for cookie in cookies.split(';') {
            if let Some(value) = cookie.trim().strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')) {
                found.push(value.to_string());
            }
        }
    }
    // Tokens are URL-safe text, so the query needs no decoding.
    for pair in parts.uri.query().unwrap_or_default().split('&') {
        if let Some(value) = pair.strip_prefix("token=") {
            found.push(value.to_string());
        }
    }
    found
}

/// Admits a request to the pages, or answers why not.
#[derive(Debug)]
pub struct PageAccess;

impl FromRequestParts<Receiver> for PageAccess {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, receiver: &Receiver) -> Result<Self, Response> {
        match &receiver.pages {
            Pages::Open => Ok(PageAccess),
            Pages::Off => Err((
                StatusCode::NOT_FOUND,
                "the receiver's pages are off (they show personal data): start finhook listen with --ui",
            )
                .into_response()),
            Pages::Token(token) => {
                if presented(parts).iter().any(|given| same(given.as_bytes(), token.as_bytes())) {
                    Ok(PageAccess)
                } else {
                    Err((
                        StatusCode::UNAUTHORIZED,
                        "the receiver's pages need the token finhook listen printed at start: open the link it printed, or send Authorization: Bearer <token>",
                    )
                        .into_response())
                }
            }
        }
    }
}

/// `GET /ui?token=…`: keeps the token in an HttpOnly cookie and opens the pages.
pub async fn open(State(receiver): State<Receiver>, _access: PageAccess) -> Response {
    let mut response = Redirect::to("/").into_response();
    if let Pages::Token(token) = &receiver.pages {
        let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}
