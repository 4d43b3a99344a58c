//! A JSON body extractor whose rejections are problem+json with the path of the mistake
//! (axum's own `Json` answers in plain text).

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::ApiError;

/// Request bodies of the management API are small; callbacks have their own limit.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;

#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_REQUEST_BYTES)
            .await
            .map_err(|_| ApiError::PayloadTooLarge { limit: MAX_REQUEST_BYTES })?;
        // An empty body is read as `{}` so that every field may take its default.
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize(&mut deserializer) {
            Ok(value) => Ok(ApiJson(value)),
            Err(error) => {
                let path = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_data() {
                    let path = if path == "." { "$".to_string() } else { format!("$.{path}") };
                    let message = inner.to_string();
                    let message = message.split(" at line ").next().unwrap_or_default().to_string();
                    Err(ApiError::validation(&path, message))
                } else {
                    Err(ApiError::BadRequest {
                        title: "Malformed JSON",
                        detail: format!("the body is not valid JSON: {inner}"),
                    })
                }
            }
        }
    }
}

/// For `PATCH`: tells a field set to `null` (`Some(None)`) from an absent one (`None`).
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
