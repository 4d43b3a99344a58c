//! The CLI's client of the `finhook serve` HTTP API: one place that knows the base URL,
//! the bearer key and how a problem+json answer becomes a one-sentence error.

use reqwest::Method;
use serde_json::Value;

/// Where the server is and how to authenticate, shared by the admin commands.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The finhook server.
    #[arg(long, env = "FINHOOK_SERVER", default_value = "http://127.0.0.1:7700", global = true)]
    pub server: String,
    /// The admin key or an instance's API key.
    #[arg(long, env = "FINHOOK_ADMIN_KEY", hide_env_values = true, global = true)]
    pub key: Option<String>,
}

/// What went wrong at the bottom of an error's chain ("Connection refused (os error 111)"),
/// rather than reqwest's "error sending request for url".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    pub fn new(args: &ServerArgs) -> Result<Self, String> {
        let key = args.key.clone().ok_or("give the API key with --key or FINHOOK_ADMIN_KEY")?;
        let url = reqwest::Url::parse(&args.server).ok().filter(|url| matches!(url.scheme(), "http" | "https"));
        if url.is_none_or(|url| url.host_str().is_none()) {
            return Err(format!(
                "--server must be the server's URL with its scheme, such as http://127.0.0.1:7700 (got {:?})",
                args.server
            ));
        }
        Ok(Self { http: reqwest::Client::new(), base: args.server.trim_end_matches('/').to_string(), key })
    }

    /// Sends a request and returns the JSON answer, or the server's problem as a sentence.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let response = self.send(method, path, body).await?;
        let text = response.text().await.unwrap_or_default();
        Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    /// Sends a request and returns the successful response, for a body read as it comes;
    /// an answer that is not a success becomes the server's problem as a sentence.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<reqwest::Response, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            format!("could not reach {}: {}; is `finhook serve` running there?", self.base, root_cause(&e))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let detail = value["detail"].as_str().unwrap_or("no detail given");
        let paths: Vec<&str> =
            value["errors"].as_array().into_iter().flatten().filter_map(|e| e["path"].as_str()).collect();
        let at = if paths.is_empty() { String::new() } else { format!(" (at {})", paths.join(", ")) };
        Err(format!("the server answered {status}: {detail}{at}"))
    }
}
