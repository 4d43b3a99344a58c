//! `finhook ledger`: download an instance's delivery ledger, and check one offline.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use finhook_core::ledger::{ChainSummary, ChainVerifier, GENESIS};
use finhook_core::secret::hex;
use reqwest::Method;

use super::{block_on, fail};
use crate::client::{Client, ServerArgs};

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
    /// Where `export` downloads from (`verify` works offline and ignores it).
    #[command(flatten)]
    server: ServerArgs,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Check an exported ledger (JSON lines) offline: every entry's hash and every link to
    /// the entry before it. Exit 0 if the chain holds, 1 naming its first broken link.
    Verify {
        /// The export, or `-` for standard input.
        file: PathBuf,
        /// The chain head written down earlier: the last entry's hash must be it.
        #[arg(long, value_name = "HASH")]
        head: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download an instance's ledger as JSON lines, oldest first.
    Export {
        /// The instance whose ledger to download.
        #[arg(long, value_name = "NAME")]
        instance: String,
        /// From the first entry of an attempt made at or after this RFC 3339 time.
        #[arg(long, value_name = "TIME", conflicts_with = "after_seq")]
        since: Option<String>,
        /// From the entry after this seq (the last line of an earlier export).
        #[arg(long, value_name = "SEQ")]
        after_seq: Option<u64>,
        /// Write to this file instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub fn run(args: LedgerArgs) -> ExitCode {
    match args.command {
        LedgerCommand::Verify { file, head, json } => verify(&file, head.as_deref(), json),
        LedgerCommand::Export { instance, since, after_seq, output } => {
            block_on(export(args.server, instance, since, after_seq, output))
        }
    }
}

#[allow(clippy::print_stdout)]
fn verify(file: &std::path::Path, head: Option<&str>, json: bool) -> ExitCode {
    let name = file.display().to_string();
    let reader: Box<dyn BufRead> = if name == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(opened) => Box::new(std::io::BufReader::new(opened)),
            Err(error) => return fail(2, format!("cannot read {name}: {error}")),
        }
    };
    let mut verifier = ChainVerifier::default();
    let mut checked = Ok(());
    for line in reader.lines() {
        match line {
            Ok(line) => {
                checked = verifier.push(&line);
                if checked.is_err() {
                    break;
                }
            }
            Err(error) => return fail(2, format!("cannot read {name}: {error}")),
        }
    }
    let result = checked.and_then(|()| verifier.finish(head));
    match (result, json) {
        (Ok(summary), false) => {
            println!("{}", described(&summary));
            ExitCode::SUCCESS
        }
        (Ok(summary), true) => {
            let value = serde_json::json!({
                "ok": true, "instance": summary.instance, "entries": summary.entries,
                "first_seq": summary.first_seq, "last_seq": summary.last_seq,
                "anchor": summary.anchor, "head": summary.head,
            });
            println!("{value}");
            ExitCode::SUCCESS
        }
        (Err(broken), false) => fail(1, format!("the ledger in {name} is broken at {broken}")),
        (Err(broken), true) => {
            let value = serde_json::json!({
                "ok": false, "line": broken.line, "seq": broken.seq, "problem": broken.problem.to_string(),
            });
            println!("{value}");
            ExitCode::from(1)
        }
    }
}

/// "ok: …" for people.
fn described(summary: &ChainSummary) -> String {
    let start = if summary.anchor == hex(&GENESIS) {
        "from the genesis".to_string()
    } else {
        format!(
            "anchored on {} (compare it with the head you wrote down at seq {})",
            summary.anchor,
            summary.first_seq - 1
        )
    };
    format!(
        "ok: {} entries of instance {}, seq {} to {}, {start}; head {}",
        summary.entries, summary.instance, summary.first_seq, summary.last_seq, summary.head
    )
}

#[allow(clippy::print_stderr)]
async fn export(
    server: ServerArgs,
    instance: String,
    since: Option<String>,
    after_seq: Option<u64>,
    output: Option<PathBuf>,
) -> ExitCode {
    let client = match Client::new(&server) {
        Ok(client) => client,
        Err(message) => return fail(2, message),
    };
    let mut query = Vec::new();
    if let Some(since) = since {
        query.push(format!("since={}", url::form_urlencoded::byte_serialize(since.as_bytes()).collect::<String>()));
    }
    if let Some(after) = after_seq {
        query.push(format!("after_seq={after}"));
    }
    let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
    let instance_path = url::form_urlencoded::byte_serialize(instance.as_bytes()).collect::<String>();
    let mut response =
        match client.send(Method::GET, &format!("/v1/instances/{instance_path}/ledger{query}"), None).await {
            Ok(response) => response,
            Err(message) => return fail(1, message),
        };
    let head = response.headers().get("finhook-ledger-head").and_then(|v| v.to_str().ok()).map(str::to_string);
    let seq = response.headers().get("finhook-ledger-seq").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut out: Box<dyn Write> = match &output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(error) => return fail(2, format!("cannot write {}: {error}", path.display())),
        },
        None => Box::new(std::io::stdout().lock()),
    };
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if let Err(error) = out.write_all(&chunk) {
                    return fail(1, format!("cannot write the export: {error}"));
                }
            }
            Ok(None) => break,
            Err(error) => return fail(1, format!("the export was cut off: {error}; run it again")),
        }
    }
    if let Err(error) = out.flush() {
        return fail(1, format!("cannot write the export: {error}"));
    }
    match (seq, head) {
        (Some(seq), Some(head)) => eprintln!("finhook: the ledger of {instance} ends at seq {seq}, head {head}"),
        _ => eprintln!("finhook: the ledger of {instance} has no entries yet"),
    }
    ExitCode::SUCCESS
}
