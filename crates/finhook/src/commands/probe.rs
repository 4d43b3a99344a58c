//! `finhook probe URL --secret whsec_…`: grades a webhook receiver (see
//! `finhook_server::probe`) and prints its report card; exit 1 if any check failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use finhook_core::secret::EndpointSecret;
use finhook_server::delivery::certificate::CertificateWatch;
use finhook_server::delivery::client::{read_root_cas, DeliveryClient};
use finhook_server::delivery::target::TargetPolicy;
use finhook_server::probe::{self, Outcome, Target};

use super::{block_on, error_chain, fail};
use crate::output;

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The receiver to grade: an https URL (plain http only to loopback, with
    /// --allow-insecure-loopback).
    url: String,
    /// The secret the receiver verifies with (whsec_…); better in FINHOOK_PROBE_SECRET
    /// than on the command line, where `ps` shows it.
    #[arg(long, env = "FINHOOK_PROBE_SECRET", hide_env_values = true)]
    secret: String,
    /// A URL with {login_id} where the receiver shows what it stored of a login (for
    /// finhook listen: http://HOST:PORT/logins/{login_id}), to check that a duplicate is
    /// stored once.
    #[arg(long, value_name = "URL")]
    check_url: Option<String>,
    /// Allow a loopback receiver, and plain http:// to it (development and tests only).
    #[arg(long)]
    allow_insecure_loopback: bool,
    /// Allow a receiver in this private network (CIDR); repeatable.
    #[arg(long = "allow-private-network", value_name = "CIDR")]
    allow_private_network: Vec<String>,
    /// Trust this PEM root CA too (a private CA); repeatable.
    #[arg(long = "extra-root-ca", value_name = "FILE")]
    extra_root_ca: Vec<PathBuf>,
    /// How long each answer may take, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout_seconds: u64,
    /// Print the report as JSON (for CI).
    #[arg(long)]
    json: bool,
}

const CHECK_COLUMNS: &[output::Column] = &[("CHECK", "/id"), ("RESULT", "/outcome"), ("WHAT HAPPENED", "/detail")];

pub fn run(args: ProbeArgs) -> ExitCode {
    let secret = match EndpointSecret::parse(args.secret.trim()) {
        Ok(secret) => secret,
        Err(error) => return fail(2, format!("--secret: {error} (an endpoint's signing secret starts with whsec_)")),
    };
    let mut networks = Vec::new();
    for cidr in &args.allow_private_network {
        match cidr.parse() {
            Ok(network) => networks.push(network),
            Err(_) => return fail(2, format!("--allow-private-network {cidr}: not a CIDR network (e.g. 10.1.0.0/16)")),
        }
    }
    let policy =
        Arc::new(TargetPolicy { allow_insecure_loopback: args.allow_insecure_loopback, allowed_networks: networks });
    if let Err(error) = policy.check_url(&args.url) {
        return fail(2, format!("{}: {error}", args.url));
    }
    let roots = match read_root_cas(&args.extra_root_ca) {
        Ok(roots) => roots,
        Err(error) => return fail(2, error_chain(&error)),
    };
    let timeout = Duration::from_secs(args.timeout_seconds.clamp(1, 300));
    block_on(async move {
        let client = match DeliveryClient::new(policy.clone(), &roots, timeout) {
            Ok(client) => client,
            Err(error) => return fail(1, error_chain(&error)),
        };
        let watch = match CertificateWatch::new(policy, &roots, timeout) {
            Ok(watch) => watch,
            Err(error) => return fail(1, error_chain(&error)),
        };
        let target = Target { url: args.url, secret, check_url: args.check_url, identity: None };
        let report = match probe::probe(&client, &watch, &target, chrono::Utc::now()).await {
            Ok(report) => report,
            Err(error) => return fail(1, error_chain(&error)),
        };
        let value = serde_json::to_value(&report).unwrap_or_default();
        if args.json {
            output::object(&value, true);
        } else {
            output::list(&value["checks"], CHECK_COLUMNS, false);
            let failed = report.checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
            let verdict = if report.passed {
                "passed: the receiver does everything checked".to_string()
            } else {
                format!("failed: {failed} of {} checks", report.checks.len())
            };
            output::object(&serde_json::json!({ "verdict": verdict }), false);
        }
        if report.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
