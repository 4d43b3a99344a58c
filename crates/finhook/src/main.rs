//! The `finhook` binary: parses the command line and hands over to the libraries.
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.

mod client;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Gives the heap's free memory back to the system; the server calls it after a large
/// callback body is done with. glibc keeps freed memory of large bodies resident: it raises
/// its mmap threshold each time it frees a large block, so later bodies of tens of MiB come
/// from the heap (32 concurrent 30 MiB ingests left 316–384 MB behind). Measured options:
/// a fixed 128 KiB threshold (83 MB left, but 512 KiB callbacks 30 % slower), jemalloc
/// (199–219 MB), mimalloc (402–492 MB); this trim after large bodies only.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: `malloc_trim` takes no pointer and only returns free heap pages to the
    // system; glibc serialises it with every other allocation.
    let _ = unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[derive(Debug, Parser)]
#[command(name = "finhook", version, about = "Durable, signed, Flinks-compatible financial webhooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and the delivery worker.
    Serve(commands::serve::ServeArgs),
    /// Receive webhooks: verify, store, deduplicate and conciliate them by LoginId.
    Listen(commands::listen::ListenArgs),
    /// Fire sandbox callbacks at a sandbox instance's endpoints.
    Trigger(commands::trigger::TriggerArgs),
    /// Manage instances through the HTTP API.
    Instances(commands::admin::InstancesArgs),
    /// Manage an instance's webhook endpoints.
    Endpoints(commands::admin::EndpointsArgs),
    /// Inspect and redeliver an instance's messages.
    Messages(commands::admin::MessagesArgs),
    /// Load-test a throwaway server: ingest N callbacks, count them at a receiver, report.
    Bench(commands::bench::BenchArgs),
    /// The relay `finhook bench --floor` measures in place of the server.
    #[command(hide = true)]
    BenchFloorServer(commands::bench::floor::FloorServerArgs),
}

fn main() -> ExitCode {
    finhook_server::http::bodies::after_large_bodies(release_free_memory);
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Listen(args) => commands::listen::run(args),
        Command::Trigger(args) => commands::trigger::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::BenchFloorServer(args) => commands::bench::floor::serve(args),
        Command::Instances(args) => commands::admin::instances(args),
        Command::Endpoints(args) => commands::admin::endpoints(args),
        Command::Messages(args) => commands::admin::messages(args),
    }
}

fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FINHOOK_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}
