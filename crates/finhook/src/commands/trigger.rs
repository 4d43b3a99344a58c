//! `finhook trigger kyc|accounts|investments|connect`: fire sandbox callbacks at a sandbox
//! instance's endpoints through a running `finhook serve`, and say what went where.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use super::{block_on, fail};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Kyc,
    Accounts,
    Investments,
    Connect,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Kyc => "kyc",
            Kind::Accounts => "accounts",
            Kind::Investments => "investments",
            Kind::Connect => "connect",
        }
    }
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// What to send: one callback, or a whole connection.
    kind: Kind,
    /// The sandbox instance whose endpoints receive it.
    #[arg(long, value_name = "NAME")]
    instance: String,
    /// A sandbox institution (FlinksCapital, CaisseBoreale, TundraWealth).
    #[arg(long)]
    institution: Option<String>,
    /// Reuse this sandbox LoginId (a refresh) instead of a new one.
    #[arg(long = "login-id", value_name = "GUID")]
    login_id: Option<String>,
    /// The Tag echoed in the callbacks.
    #[arg(long)]
    tag: Option<String>,
    /// The finhook server.
    #[arg(long, env = "FINHOOK_SERVER", default_value = "http://127.0.0.1:7700")]
    server: String,
    /// The admin key or the instance's API key.
    #[arg(long, env = "FINHOOK_ADMIN_KEY", hide_env_values = true)]
    key: String,
    /// Print the server's JSON answer instead of lines.
    #[arg(long)]
    json: bool,
}

#[allow(clippy::print_stdout)]
pub fn run(args: TriggerArgs) -> ExitCode {
    block_on(async move {
        let url = format!("{}/v1/instances/{}/sandbox/trigger", args.server.trim_end_matches('/'), args.instance);
        let body = json!({ "kind": args.kind.as_str(), "institution": args.institution, "login_id": args.login_id, "tag": args.tag });
        let response = match reqwest::Client::new().post(&url).bearer_auth(&args.key).json(&body).send().await {
            Ok(response) => response,
            Err(error) => {
                return fail(1, format!("could not reach {}: {error}; is `finhook serve` running there?", args.server))
            }
        };
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = answer["detail"].as_str().unwrap_or("no detail");
            return fail(1, format!("the server refused the trigger ({status}): {detail}"));
        }
        if args.json {
            println!("{answer}");
            return ExitCode::SUCCESS;
        }
        println!(
            "LoginId {}  RequestId {}  Institution {}  Tag {}",
            answer["login_id"].as_str().unwrap_or("-"),
            answer["request_id"].as_str().unwrap_or("-"),
            answer["institution"].as_str().unwrap_or("-"),
            answer["tag"].as_str().unwrap_or("-"),
        );
        for message in answer["messages"].as_array().into_iter().flatten() {
            let endpoints: Vec<&str> =
                message["endpoints"].as_array().into_iter().flatten().filter_map(|e| e["url"].as_str()).collect();
            let targets =
                if endpoints.is_empty() { "no enabled endpoint takes it".to_string() } else { endpoints.join(", ") };
            println!(
                "sent {:<17} {}  ->  {targets}",
                message["response_type"].as_str().unwrap_or("-"),
                message["message_id"].as_str().unwrap_or("-")
            );
        }
        ExitCode::SUCCESS
    })
}
