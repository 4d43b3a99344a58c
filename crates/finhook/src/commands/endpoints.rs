//! `finhook endpoints`: an instance's webhook endpoints, through the HTTP API.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::admin::{run_with, NO_INSTANCE};
use super::fail;
use crate::client::ServerArgs;
use crate::output;

#[derive(Debug, Args)]
pub struct EndpointsArgs {
    #[command(subcommand)]
    command: EndpointsCommand,
    /// The instance the endpoints belong to.
    #[arg(long, global = true, value_name = "NAME")]
    instance: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum EndpointsCommand {
    /// Every endpoint of the instance, with its state and the last hour's health.
    List,
    /// One endpoint: its settings, certificate, failing state and health.
    Show {
        /// The endpoint's id (ep_...).
        id: String,
    },
    /// Create an endpoint; prints its signing secret once.
    Create {
        /// Where callbacks go: an https URL (http only to loopback with the server's
        /// --allow-insecure-loopback); private addresses need the server's allow-list.
        url: String,
        /// Only these types (repeatable): KYC, GetAccountsDetail, Investments, or finhook's events (endpoint.failing, endpoint.recovered, endpoint.disabled, message.attempts_exhausted, certificate.expiring); default every callback and no event.
        #[arg(long = "event-type", value_name = "TYPE")]
        event_types: Vec<String>,
        /// Attempts before a delivery fails for good (default 10).
        #[arg(long)]
        max_attempts: Option<u32>,
        /// Seconds between attempts (default 1800, Flinks' 30 minutes).
        #[arg(long)]
        interval_seconds: Option<u32>,
        /// Count any 2xx as success instead of 200 only.
        #[arg(long)]
        any_2xx: bool,
        /// How webhook-signature is made: hmac (v1, the endpoint's secret) or ed25519 (v1a, the instance's keys, published as a JWK set).
        #[arg(long, value_name = "SCHEME", value_parser = ["hmac", "ed25519"])]
        signing: Option<String>,
        /// Store the endpoint even if its server's TLS certificate is not valid (the answer still says what is wrong).
        #[arg(long)]
        no_verify: bool,
        /// How it takes a LoginId's callbacks: none (as soon as each is due, several at once, the default) or login-id (one at a time, in ingest order).
        #[arg(long, value_enum)]
        ordering: Option<Ordering>,
    },
    /// Change what is given and leave the rest as it is.
    Update {
        /// The endpoint's id (ep_...).
        id: String,
        /// A new URL (checked as on create).
        #[arg(long)]
        url: Option<String>,
        /// A new description; an empty one removes it.
        #[arg(long)]
        description: Option<String>,
        /// How it takes a LoginId's callbacks: none or login-id.
        #[arg(long, value_enum)]
        ordering: Option<Ordering>,
        /// Only these types from now on (repeatable; replaces the list).
        #[arg(long = "event-type", value_name = "TYPE")]
        event_types: Vec<String>,
    },
    /// Send to it again: its waiting deliveries go out at once.
    Enable {
        /// The endpoint's id (ep_...).
        id: String,
    },
    /// Send it nothing; its deliveries wait until it is enabled.
    Disable {
        /// The endpoint's id (ep_...).
        id: String,
    },
    /// Delete it; its pending deliveries are cancelled.
    Delete {
        /// The endpoint's id (ep_...).
        id: String,
    },
    /// A new secret; the old one keeps signing for 24 h.
    RotateSecret {
        /// The endpoint's id (ep_...).
        id: String,
    },
    /// Send it a test callback, to it alone (Tag finhook-test, a fresh LoginId), and
    /// print the message's id to follow it with `messages show`.
    Test {
        /// The endpoint's id (ep_...).
        id: String,
    },
    /// Its deliveries, newest first, each with its last attempt.
    Deliveries {
        /// The endpoint's id (ep_...).
        id: String,
        /// How many per page (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
}

/// An endpoint's delivery order, as the CLI spells it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Ordering {
    None,
    LoginId,
}

impl Ordering {
    /// As the API names it.
    fn as_api(self) -> &'static str {
        match self {
            Ordering::None => "none",
            Ordering::LoginId => "login_id",
        }
    }
}

const ENDPOINT_COLUMNS: &[output::Column] = &[
    ("ID", "/id"),
    ("URL", "/url"),
    ("ENABLED", "/enabled"),
    ("OK 1H", "/health/last_hour/success_rate"),
    ("P99 MS 1H", "/health/last_hour/latency_p99_ms"),
    ("LAST", "/health/last_status_code"),
    ("FAILED IN ROW", "/failing/failed_attempts_in_row"),
    ("BACKLOG", "/health/backlog"),
    ("SIGNING", "/signing"),
    ("ORDER", "/ordering"),
    ("TYPES", "/event_types"),
    ("ATTEMPTS", "/retry/max_attempts"),
    ("INTERVAL S", "/retry/interval_seconds"),
];
const ENDPOINT_DELIVERY_COLUMNS: &[output::Column] = &[
    ("MESSAGE", "/message_id"),
    ("TYPE", "/response_type"),
    ("STATUS", "/status"),
    ("ATTEMPTS", "/attempts_made"),
    ("LAST AT", "/attempts/0/started_at"),
    ("LAST ANSWER", "/attempts/0/status_code"),
    ("ERROR", "/attempts/0/error_class"),
    ("NEXT", "/next_attempt_at"),
];

pub fn endpoints(args: EndpointsArgs) -> ExitCode {
    let json = args.json;
    let Some(instance) = args.instance.clone() else { return fail(2, NO_INSTANCE) };
    if let EndpointsCommand::Update { url: None, description: None, ordering: None, event_types, .. } = &args.command {
        if event_types.is_empty() {
            return fail(2, "nothing to change: give --url, --description, --ordering or --event-type");
        }
    }
    run_with(&args.server, async move |client| {
        let base = format!("/v1/instances/{instance}/endpoints");
        let answer = match args.command {
            EndpointsCommand::List => {
                output::list(&client.call(Method::GET, &base, None).await?["data"], ENDPOINT_COLUMNS, json);
                return Ok(());
            }
            EndpointsCommand::Show { id } => client.call(Method::GET, &format!("{base}/{id}"), None).await?,
            EndpointsCommand::Create {
                url,
                event_types,
                max_attempts,
                interval_seconds,
                any_2xx,
                signing,
                no_verify,
                ordering,
            } => {
                let mut body = json!({ "url": url, "retry": { "max_attempts": max_attempts, "interval_seconds": interval_seconds } });
                if let Some(retry) = body["retry"].as_object_mut() {
                    retry.retain(|_, v| !v.is_null());
                }
                if !event_types.is_empty() {
                    body["event_types"] = json!(event_types);
                }
                if any_2xx {
                    body["success"] = json!("any_2xx");
                }
                if no_verify {
                    body["verify"] = json!(false);
                }
                if let Some(signing) = signing {
                    body["signing"] = json!(signing);
                }
                if let Some(ordering) = ordering {
                    body["ordering"] = json!(ordering.as_api());
                }
                client.call(Method::POST, &base, Some(body)).await?
            }
            EndpointsCommand::Update { id, url, description, ordering, event_types } => {
                let mut body = json!({});
                if let Some(url) = url {
                    body["url"] = json!(url);
                }
                if let Some(description) = description {
                    body["description"] = if description.is_empty() { json!(null) } else { json!(description) };
                }
                if let Some(ordering) = ordering {
                    body["ordering"] = json!(ordering.as_api());
                }
                if !event_types.is_empty() {
                    body["event_types"] = json!(event_types);
                }
                client.call(Method::PATCH, &format!("{base}/{id}"), Some(body)).await?
            }
            EndpointsCommand::Enable { id } => {
                client.call(Method::PATCH, &format!("{base}/{id}"), Some(json!({ "enabled": true }))).await?
            }
            EndpointsCommand::Disable { id } => {
                client.call(Method::PATCH, &format!("{base}/{id}"), Some(json!({ "enabled": false }))).await?
            }
            EndpointsCommand::Delete { id } => {
                client.call(Method::DELETE, &format!("{base}/{id}"), None).await?;
                json!({ "deleted": id })
            }
            EndpointsCommand::RotateSecret { id } => {
                client.call(Method::POST, &format!("{base}/{id}/rotate-secret"), None).await?
            }
            EndpointsCommand::Test { id } => client.call(Method::POST, &format!("{base}/{id}/test"), None).await?,
            EndpointsCommand::Deliveries { id, limit, cursor } => {
                let mut path = format!("{base}/{id}/deliveries?limit={limit}");
                if let Some(cursor) = cursor {
                    path.push_str(&format!(
                        "&cursor={}",
                        url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
                    ));
                }
                let page = client.call(Method::GET, &path, None).await?;
                if json {
                    output::object(&page, true);
                } else {
                    output::list(&page["data"], ENDPOINT_DELIVERY_COLUMNS, false);
                    if let Some(cursor) = page["next_cursor"].as_str() {
                        output::object(&json!({ "next page": format!("--cursor {cursor}") }), false);
                    }
                }
                return Ok(());
            }
        };
        output::object(&answer, json);
        Ok(())
    })
}
