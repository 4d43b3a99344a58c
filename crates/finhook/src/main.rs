//! The `finhook` binary: parses the command line and hands over to the libraries.
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.

mod client;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc serves Rust's allocations: over 100 endpoints it delivers 12 % more per second
/// than glibc's allocator, at 8–18 % less CPU per delivery (docs/BENCHMARKS.md, "jemalloc,
/// with both heaps trimmed"). SQLite's own C allocations stay on glibc's heap.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Gives the heaps' free memory back to the system; the server calls it after a large
/// callback body is done with. Both heaps keep the freed memory of large bodies resident:
/// jemalloc as dirty pages of arenas that then go idle (it decays them only when an arena
/// is used again), glibc as the copies SQLite made of the bound payloads (glibc raises its
/// mmap threshold each time it frees a large block). After 32 concurrent 30 MiB ingests:
/// 22–24 MB left with both released, 111 MB with glibc's alone, 143–204 MB with jemalloc's
/// alone, 316–384 MB with neither.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: `malloc_trim` takes no pointer and only returns free heap pages to the
    // system; glibc serialises it with every other allocation.
    let _ = unsafe { libc::malloc_trim(0) };
    purge_jemalloc();
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {
    #[cfg(not(target_env = "msvc"))]
    purge_jemalloc();
}

/// Purges the dirty pages of every jemalloc arena (`MALLCTL_ARENAS_ALL` is 4096).
#[cfg(not(target_env = "msvc"))]
#[allow(unsafe_code)]
fn purge_jemalloc() {
    // SAFETY: a documented control name, NUL-terminated; `arena.<i>.purge` reads and
    // writes no value, so the null pointers are never dereferenced.
    let _ = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
}

#[derive(Debug, Parser)]
#[command(name = "finhook", version, about = "Durable, signed, Flinks-compatible financial webhooks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to standard error: `text` for people, `json` (one object
    /// per line, with the request's id and fields) for a log pipeline.
    #[arg(long, global = true, env = "FINHOOK_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
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
    /// Rotate the admin key.
    AdminKey(commands::admin::AdminKeyArgs),
    /// Read the audit log: who did what, when, from where.
    Audit(commands::admin::AuditArgs),
    /// Manage an instance's webhook endpoints.
    Endpoints(commands::endpoints::EndpointsArgs),
    /// Inspect and redeliver an instance's messages.
    Messages(commands::admin::MessagesArgs),
    /// Export an instance's tamper-evident delivery ledger, or verify an export offline.
    Ledger(commands::ledger::LedgerArgs),
    /// Grade a webhook receiver: signed callbacks and deliberate faults, a report card.
    Probe(commands::probe::ProbeArgs),
    /// Load-test a throwaway server: ingest N callbacks, count them at a receiver, report.
    Bench(commands::bench::BenchArgs),
    /// The relay `finhook bench --floor` measures in place of the server.
    #[command(hide = true)]
    BenchFloorServer(commands::bench::floor::FloorServerArgs),
}

fn main() -> ExitCode {
    finhook_server::http::bodies::after_large_bodies(release_free_memory);
    let cli = Cli::parse();
    init_tracing(cli.log_format == "json");
    match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Listen(args) => commands::listen::run(args),
        Command::Trigger(args) => commands::trigger::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::BenchFloorServer(args) => commands::bench::floor::serve(args),
        Command::Instances(args) => commands::admin::instances(args),
        Command::AdminKey(args) => commands::admin::admin_key(args),
        Command::Audit(args) => commands::admin::audit(args),
        Command::Endpoints(args) => commands::endpoints::endpoints(args),
        Command::Messages(args) => commands::admin::messages(args),
        Command::Ledger(args) => commands::ledger::run(args),
        Command::Probe(args) => commands::probe::run(args),
    }
}

fn init_tracing(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FINHOOK_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).with_span_list(false).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and subcommand says what it does, and every flag and argument what it
    /// takes: `finhook help …` is the manual nobody has to look elsewhere for.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if command.is_hide_set() {
                return;
            }
            if command.get_about().is_none() {
                missing.push(format!("{path}: no about"));
            }
            for argument in command.get_arguments() {
                let id = argument.get_id().as_str();
                if argument.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if argument.get_help().is_none() && argument.get_long_help().is_none() {
                    missing.push(format!("{path} {id}: no help"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let command = super::Cli::command();
        walk(&command, "finhook", &mut missing);
        assert!(missing.is_empty(), "without help text:\n{}", missing.join("\n"));
        // And it is one valid command line: no clashing flags, every default parses.
        command.debug_assert();
    }
}
