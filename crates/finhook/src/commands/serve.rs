//! `finhook serve`: the API and the delivery worker in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use finhook_server::app::{AdminKey, App};
use finhook_server::clock::SystemClock;
use finhook_server::config::Settings;
use serde::Serialize;

use super::{block_on, error_chain, fail, shutdown_signal};

/// Flags of `finhook serve`. Each overrides `finhook.toml` and `FINHOOK_*` when given.
#[derive(Debug, Args, Serialize)]
pub struct ServeArgs {
    /// A config file (default: ./finhook.toml when present).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7700].
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Store URL [default: sqlite://finhook.db].
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    /// Trust this PEM root CA too (a private CA); repeatable.
    #[arg(long = "extra-root-ca", value_name = "FILE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extra_root_ca: Vec<PathBuf>,
    /// Allow loopback endpoints and plain http:// to them (development and tests only).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_insecure_loopback: bool,
    /// Allow endpoints in this private network (CIDR); repeatable.
    #[arg(long = "allow-private-network", value_name = "CIDR")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allow_private_network: Vec<String>,
    /// Serve HTTPS with this PEM certificate chain (the leaf first); with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    /// Timeout of one delivery attempt, in seconds [default: 15].
    #[arg(long = "delivery-timeout", value_name = "SECONDS")]
    #[serde(rename = "delivery_timeout_seconds", skip_serializing_if = "Option::is_none")]
    delivery_timeout_seconds: Option<u64>,
}

#[allow(clippy::print_stdout)]
pub fn run(args: ServeArgs) -> ExitCode {
    let settings = match Settings::load(args.config.as_deref(), &args) {
        Ok(settings) => settings,
        Err(error) => {
            return fail(
                2,
                format!("invalid configuration: {error}. Fix finhook.toml, the FINHOOK_* variables or the flags"),
            )
        }
    };
    block_on(async {
        let app = match App::build(&settings, Arc::new(SystemClock)).await {
            Ok(app) => app,
            Err(error) => return fail(1, error_chain(&error)),
        };
        if let AdminKey::Generated(key) = app.admin_key() {
            println!("Generated the admin key (shown only this once; only its hash is stored):");
            println!("  FINHOOK_ADMIN_KEY={}", key.expose());
        }
        let addr = app.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let database = finhook_server::store::sql::open::redact_password(&settings.database);
        tracing::info!(%addr, %database, pending_deliveries = app.pending_at_start(), "finhook serving");
        let scheme = if settings.tls_cert.is_some() { "https" } else { "http" };
        println!("finhook listening on {scheme}://{addr}");
        match app.run(shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(1, format!("the server stopped: {error}")),
        }
    })
}
