//! A request id per HTTP request: taken from the caller's `x-request-id` when it is a
//! short visible-ASCII token, made up otherwise; every log line written while the request
//! is handled carries it (a `request` span), and the answer echoes it.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

/// The request's id, in its extensions for the handlers (the audit log).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The longest caller-chosen id kept; a longer or odd one is replaced.
const MAX_LEN: usize = 128;

pub async fn with_request_id(mut request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string);
    let id = given.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
