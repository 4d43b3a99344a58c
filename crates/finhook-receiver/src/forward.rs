//! `--forward-to`: relay a stored callback, original body and signature headers, to the
//! user's own app.

use std::time::Duration;

use http::HeaderMap;

/// The request headers worth relaying: the signatures and the content type. Hop-by-hop and
/// connection headers are the forwarder's own.
const RELAYED: [&str; 6] =
    ["content-type", "flinks-authenticity-key", "webhook-id", "webhook-timestamp", "webhook-signature", "user-agent"];

/// Why the app did not take a callback.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("the app at {url} did not answer: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the app at {url} answered {status}")]
    Refused { url: String, status: u16 },
}

#[derive(Debug, Clone)]
pub struct Forwarder {
    url: String,
    http: reqwest::Client,
}

impl Forwarder {
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { url: url.into(), http })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs the body as received; any 2xx is acceptance.
    pub async fn forward(&self, headers: &HeaderMap, body: bytes::Bytes) -> Result<(), ForwardError> {
        let mut request = self.http.post(&self.url).body(body);
        for name in RELAYED {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        let response =
            request.send().await.map_err(|source| ForwardError::Unreachable { url: self.url.clone(), source })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(ForwardError::Refused { url: self.url.clone(), status: status.as_u16() })
        }
    }
}
