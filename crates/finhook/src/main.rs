//! The `finhook` binary: parses the command line and hands over to the libraries.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use finhook_server::app::{AdminKey, App};
use finhook_server::clock::SystemClock;
use finhook_server::config::Settings;
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(name = "finhook", version, about = "Durable, signed, Flinks-compatible financial webhooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and the delivery worker.
    Serve(ServeArgs),
}

/// Flags of `finhook serve`. Each overrides `finhook.toml` and `FINHOOK_*` when given.
#[derive(Debug, Args, Serialize)]
struct ServeArgs {
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
    #[serde(rename = "extra_root_ca", skip_serializing_if = "Vec::is_empty")]
    extra_root_ca: Vec<PathBuf>,
    /// Allow loopback endpoints and plain http:// to them (development and tests only).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_insecure_loopback: bool,
    /// Allow endpoints in this private network (CIDR); repeatable.
    #[arg(long = "allow-private-network", value_name = "CIDR")]
    #[serde(rename = "allow_private_network", skip_serializing_if = "Vec::is_empty")]
    allow_private_network: Vec<String>,
    /// Timeout of one delivery attempt, in seconds [default: 15].
    #[arg(long = "delivery-timeout", value_name = "SECONDS")]
    #[serde(rename = "delivery_timeout_seconds", skip_serializing_if = "Option::is_none")]
    delivery_timeout_seconds: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FINHOOK_LOG").unwrap_or_else(|_| "info".into());
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn serve(args: ServeArgs) -> ExitCode {
    let settings = match Settings::load(args.config.as_deref(), &args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!(
                "finhook: invalid configuration: {error}. Fix finhook.toml, the FINHOOK_* variables or the flags."
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("finhook: could not start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let app = match App::build(&settings, Arc::new(SystemClock)).await {
            Ok(app) => app,
            Err(error) => {
                eprintln!("finhook: {}", error_chain(&error));
                return ExitCode::from(1);
            }
        };
        if let AdminKey::Generated(key) = app.admin_key() {
            println!("Generated the admin key (shown only this once; only its hash is stored):");
            println!("  FINHOOK_ADMIN_KEY={}", key.expose());
        }
        let addr = app.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(%addr, database = %settings.database, resumed_attempts = app.released_claims(), "finhook serving");
        println!("finhook listening on http://{addr}");
        match app.run(true, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("finhook: the server stopped: {error}");
                ExitCode::from(1)
            }
        }
    })
}

/// "outer: cause: root cause", so one line says what went wrong and why.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
