//! `finhook instances|messages|audit|admin-key`: the admin client of the HTTP API (endpoints
//! in `endpoints.rs`).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::{block_on, fail};
use crate::client::{Client, ServerArgs};
use crate::output;

#[derive(Debug, Args)]
pub struct InstancesArgs {
    #[command(subcommand)]
    command: InstancesCommand,
    #[command(flatten)]
    server: ServerArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum InstancesCommand {
    /// List instances.
    List,
    /// Show one instance.
    Show {
        /// The instance's name.
        name: String,
    },
    /// Create an instance (admin key); prints its API key once.
    Create {
        /// Its name: lowercase letters, digits and dashes (1 to 63), unique.
        name: String,
        /// `live` delivers what is ingested; `sandbox` also answers the Flinks-compatible
        /// sandbox API and fires its callbacks.
        #[arg(long, value_parser = ["live", "sandbox"], default_value = "live")]
        mode: String,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
    #[command(flatten)]
    server: ServerArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Who did what, newest first (the admin key: every instance; an instance key: its own).
    List {
        /// Only this instance's actions.
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// How many entries per page (1 to 250).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The previous page's next cursor.
        #[arg(long)]
        cursor: Option<i64>,
    },
}

const AUDIT_COLUMNS: &[output::Column] = &[
    ("WHEN", "/at"),
    ("WHO", "/actor"),
    ("ACTION", "/action"),
    ("INSTANCE", "/instance"),
    ("TARGET", "/target"),
    ("FROM", "/remote_addr"),
    ("REQUEST", "/request_id"),
];

pub fn audit(args: AuditArgs) -> ExitCode {
    let json = args.json;
    run_with(&args.server, async move |client| {
        match args.command {
            AuditCommand::List { instance, limit, cursor } => {
                let mut query = vec![format!("limit={limit}")];
                query.extend(instance.map(|name| format!("instance={name}")));
                query.extend(cursor.map(|cursor| format!("cursor={cursor}")));
                let page = client.call(Method::GET, &format!("/v1/audit?{}", query.join("&")), None).await?;
                if json {
                    output::object(&page, true);
                } else {
                    output::list(&page["data"], AUDIT_COLUMNS, false);
                    if let Some(cursor) = page["next_cursor"].as_i64() {
                        output::object(&json!({ "next page": format!("--cursor {cursor}") }), false);
                    }
                }
            }
        }
        Ok(())
    })
}

#[derive(Debug, Args)]
pub struct AdminKeyArgs {
    #[command(subcommand)]
    command: AdminKeyCommand,
    #[command(flatten)]
    server: ServerArgs,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum AdminKeyCommand {
    /// Make a new admin key (with the current one in --key or FINHOOK_ADMIN_KEY); prints it
    /// once, and the old one stops working. Not when the server takes its key from
    /// FINHOOK_ADMIN_KEY: change it there.
    Rotate,
}

#[derive(Debug, Args)]
pub struct MessagesArgs {
    #[command(subcommand)]
    command: MessagesCommand,
    /// The instance the messages belong to.
    #[arg(long, global = true, value_name = "NAME")]
    instance: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum MessagesCommand {
    /// Newest first; the filters combine.
    List {
        /// Only the callbacks of this LoginId.
        #[arg(long)]
        login_id: Option<String>,
        /// Only callbacks with this Tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only callbacks of this RequestId.
        #[arg(long)]
        request_id: Option<String>,
        /// A callback type (KYC, GetAccountsDetail, Investments) or an event's name.
        #[arg(long)]
        response_type: Option<String>,
        /// Messages whose latest delivery somewhere is pending, delivered, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Received since: an RFC 3339 time, or how long ago (`30m`, `1h`, `2d`).
        #[arg(long)]
        since: Option<String>,
        /// Received until, in the same forms.
        #[arg(long)]
        until: Option<String>,
        /// How many per page (1 to 250).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// The previous page's next cursor.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// A message with its deliveries and attempts.
    Show {
        /// The message's id (msg_...).
        id: String,
    },
    /// A new delivery round, to every endpoint or one.
    Redeliver {
        /// The message's id (msg_...).
        id: String,
        /// Only to this endpoint (ep_...); every enabled endpoint that takes it otherwise.
        #[arg(long = "endpoint")]
        endpoint_id: Option<String>,
    },
    /// Re-send every delivery that failed in a time range (of one endpoint, or of all) as
    /// a job, and follow it to its end.
    Recover {
        /// From: an RFC 3339 time, or how long ago (`90s`, `30m`, `1h`, `2d`).
        #[arg(long)]
        since: String,
        /// Until, in the same forms; now when absent.
        #[arg(long)]
        until: Option<String>,
        /// Only this endpoint's deliveries.
        #[arg(long = "endpoint")]
        endpoint_id: Option<String>,
    },
}

/// A time given as RFC 3339, or as how long ago (`90s`, `30m`, `1h`, `2d`), in RFC 3339.
fn time_arg(flag: &str, text: &str) -> Result<String, String> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&chrono::Utc).to_rfc3339());
    }
    let unit_at = text.char_indices().last().map_or(0, |(at, _)| at);
    let seconds = match (text[..unit_at].parse::<i64>(), &text[unit_at..]) {
        (Ok(n), "s") => Some(n),
        (Ok(n), "m") => n.checked_mul(60),
        (Ok(n), "h") => n.checked_mul(3_600),
        (Ok(n), "d") => n.checked_mul(86_400),
        _ => None,
    };
    let ago = seconds.filter(|s| *s >= 0).and_then(chrono::Duration::try_seconds).ok_or_else(|| {
        format!("{flag} must be an RFC 3339 time or how long ago, such as 30m, 1h or 2d (got {text:?})")
    })?;
    Ok((chrono::Utc::now() - ago).to_rfc3339())
}

const INSTANCE_COLUMNS: &[output::Column] =
    &[("NAME", "/name"), ("MODE", "/mode"), ("CUSTOMER ID", "/customer_id"), ("CREATED", "/created_at")];
const MESSAGE_COLUMNS: &[output::Column] = &[
    ("ID", "/id"),
    ("TYPE", "/response_type"),
    ("LOGIN ID", "/login_id"),
    ("TAG", "/tag"),
    ("CREATED", "/created_at"),
    ("STATUS", "/statuses"),
];
const DELIVERY_COLUMNS: &[output::Column] = &[
    ("DELIVERY", "/id"),
    ("ENDPOINT", "/endpoint_id"),
    ("STATUS", "/status"),
    ("ATTEMPTS", "/attempts_made"),
    ("NEXT", "/next_attempt_at"),
    ("LAST ANSWER", "/last/status_code"),
    ("ERROR", "/last/error_class"),
    ("EXCERPT", "/last/response_excerpt"),
    ("SUPERSEDED", "/superseded"),
];

pub(super) fn run_with(server: &ServerArgs, work: impl AsyncFnOnce(Client) -> Result<(), String>) -> ExitCode {
    let client = match Client::new(server) {
        Ok(client) => client,
        Err(message) => return fail(2, message),
    };
    block_on(async move {
        match work(client).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => fail(1, message),
        }
    })
}

pub fn instances(args: InstancesArgs) -> ExitCode {
    let json = args.json;
    run_with(&args.server, async move |client| {
        match args.command {
            InstancesCommand::List => {
                output::list(&client.call(Method::GET, "/v1/instances", None).await?["data"], INSTANCE_COLUMNS, json)
            }
            InstancesCommand::Show { name } => {
                output::object(&client.call(Method::GET, &format!("/v1/instances/{name}"), None).await?, json)
            }
            InstancesCommand::Create { name, mode } => {
                let created =
                    client.call(Method::POST, "/v1/instances", Some(json!({ "name": name, "mode": mode }))).await?;
                output::object(&created, json);
            }
        }
        Ok(())
    })
}

#[allow(clippy::print_stdout)]
pub fn admin_key(args: AdminKeyArgs) -> ExitCode {
    let json = args.json;
    run_with(&args.server, async move |client| {
        match args.command {
            AdminKeyCommand::Rotate => {
                let rotated = client.call(Method::POST, "/v1/admin-key/rotate", None).await?;
                if json {
                    println!("{rotated}");
                } else {
                    let key = rotated["admin_key"].as_str().unwrap_or_default();
                    println!("The new admin key (shown only this once; the old one no longer works):");
                    println!("  FINHOOK_ADMIN_KEY={key}");
                }
            }
        }
        Ok(())
    })
}

pub(super) const NO_INSTANCE: &str = "name the instance with --instance NAME";

pub fn messages(args: MessagesArgs) -> ExitCode {
    let json = args.json;
    let Some(instance) = args.instance.clone() else { return fail(2, NO_INSTANCE) };
    run_with(&args.server, async move |client| {
        let base = format!("/v1/instances/{instance}/messages");
        match args.command {
            MessagesCommand::List { login_id, tag, request_id, response_type, status, since, until, limit, cursor } => {
                let mut query = vec![format!("limit={limit}")];
                let since = since.map(|since| time_arg("--since", &since)).transpose()?;
                let until = until.map(|until| time_arg("--until", &until)).transpose()?;
                for (key, value) in [
                    ("login_id", login_id),
                    ("tag", tag),
                    ("request_id", request_id),
                    ("response_type", response_type),
                    ("status", status),
                    ("since", since),
                    ("until", until),
                    ("cursor", cursor),
                ] {
                    if let Some(value) = value {
                        query.push(format!(
                            "{key}={}",
                            url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>()
                        ));
                    }
                }
                let page = client.call(Method::GET, &format!("{base}?{}", query.join("&")), None).await?;
                if json {
                    output::object(&page, true);
                } else {
                    output::list(&page["data"], MESSAGE_COLUMNS, false);
                    if let Some(cursor) = page["next_cursor"].as_str() {
                        output::object(&json!({ "next page": format!("--cursor {cursor}") }), false);
                    }
                }
            }
            MessagesCommand::Show { id } => {
                let message = client.call(Method::GET, &format!("{base}/{id}"), None).await?;
                if json {
                    output::object(&message, true);
                } else {
                    let mut summary = message.clone();
                    if let Some(fields) = summary.as_object_mut() {
                        fields.remove("payload");
                        fields.remove("deliveries");
                    }
                    output::object(&summary, false);
                    // Each delivery's last attempt beside it: what the endpoint answered.
                    let mut deliveries = message["deliveries"].clone();
                    for delivery in deliveries.as_array_mut().into_iter().flatten() {
                        let last = delivery["attempts"].as_array().and_then(|a| a.last()).cloned();
                        delivery["last"] = last.unwrap_or_default();
                    }
                    output::list(&deliveries, DELIVERY_COLUMNS, false);
                }
            }
            MessagesCommand::Redeliver { id, endpoint_id } => {
                let answer = client
                    .call(Method::POST, &format!("{base}/{id}/redeliver"), Some(json!({ "endpoint_id": endpoint_id })))
                    .await?;
                output::object(&answer, json);
            }
            MessagesCommand::Recover { since, until, endpoint_id } => {
                let since = time_arg("--since", &since)?;
                let until = until.map(|until| time_arg("--until", &until)).transpose()?;
                let body = json!({ "since": since, "until": until, "endpoint_id": endpoint_id });
                let job = client.call(Method::POST, &format!("/v1/instances/{instance}/recover"), Some(body)).await?;
                let done = follow(&client, &instance, &job, json).await?;
                output::object(&done, json);
                if done["status"] != "done" {
                    return Err(format!("the recovery {}: {}", done["status"], done["error"]));
                }
            }
        }
        Ok(())
    })
}

/// Follows a recovery job to its end, with a progress bar for people.
async fn follow(
    client: &Client,
    instance: &str,
    job: &serde_json::Value,
    json: bool,
) -> Result<serde_json::Value, String> {
    let id = job["id"].as_str().ok_or("the server answered no job id")?;
    let path = format!("/v1/instances/{instance}/recover/{id}");
    let progress = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(job["total"].as_u64().unwrap_or(0))
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} re-sent {pos}/{len} [{bar:40}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Bounded: a job of a million deliveries ends well within this many looks.
    for _ in 0..36_000 {
        let now = client.call(Method::GET, &path, None).await?;
        progress.set_position(now["resent"].as_u64().unwrap_or(0));
        if now["status"] != "running" {
            progress.finish_and_clear();
            return Ok(now);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    progress.abandon();
    Err(format!("the recovery {id} is still running; follow it with GET {path}"))
}
