//! `finhook bench`: the load generator. Starts a `finhook serve` (a throwaway SQLite store,
//! or a PostgreSQL database given with `--database`) and a receiver in this process, both
//! on 127.0.0.1; ingests callbacks in a closed loop or at a fixed rate, over one or more
//! instances and endpoints, optionally as a backlog built while the receiver is down; and
//! reports throughput, end-to-end latency, the drain rate, and the server's peak memory and
//! CPU time.

pub mod floor;
mod load;
mod payload;
mod receiver;
mod report;
mod seed;
mod server;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{block_on, fail};
use load::Shape;
use receiver::Arrivals;
use report::{print_report, Latency, Report};
use server::Server;

pub(crate) const BENCH_KEY: &str = "fhk_bench_0123456789abcdefghijklmnopqrstuvwxyzABCDEF";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many callbacks to ingest.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Ingest requests in flight at once (a closed loop: the next is sent when one is answered).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Offer this many callbacks per second on schedule instead (an open loop), to measure
    /// latency at a given load.
    #[arg(long, value_name = "PER_SECOND", conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// A callback body to send instead of the GetAccountsDetail fixture.
    #[arg(long, value_name = "FILE", conflicts_with = "payload_bytes")]
    payload: Option<std::path::PathBuf>,
    /// Grow the GetAccountsDetail fixture (more transactions) to at least this many bytes.
    #[arg(long, value_name = "BYTES")]
    payload_bytes: Option<usize>,
    /// Instances to spread the callbacks over (round robin).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Endpoints in all, dealt round robin to the instances; each callback is delivered to
    /// every endpoint of its instance.
    #[arg(long, default_value_t = 1)]
    endpoints: usize,
    /// Build a backlog of N callbacks while the receiver answers 503, then let it recover
    /// and time the drain (replaces --messages).
    #[arg(long, value_name = "N", conflicts_with = "messages")]
    backlog: Option<usize>,
    /// First build a backlog of N callbacks for one more endpoint, of an instance of its
    /// own, that never answers (every attempt runs into the server's timeout), then run the
    /// load as usual: compare with a run without it to see what a hanging endpoint costs
    /// the healthy ones.
    #[arg(long, value_name = "N", conflicts_with = "backlog")]
    hanging: Option<usize>,
    /// With --hanging: how many endpoints of that instance never answer (each callback of
    /// the backlog goes to all of them).
    #[arg(long, value_name = "K", default_value_t = 1, requires = "hanging")]
    hanging_endpoints: usize,
    /// With --backlog: write the backlog straight into the store (the same rows ingest
    /// writes, every delivery due at once) while the server is stopped, then start it and
    /// time the drain: the way to measure backlogs of 100,000 or 1,000,000, which would take
    /// hours to build through the API.
    #[arg(long, requires = "backlog")]
    seed: bool,
    /// With --backlog: the endpoints' fixed retry interval.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    retry_seconds: u32,
    /// Run the server on this PostgreSQL database (postgres://…) instead of a throwaway
    /// SQLite file. Its instances are named bench-<run>-<n>, so a database can be reused.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long = "timeout", value_name = "SECONDS", default_value_t = 300)]
    timeout_seconds: u64,
    /// Measure what the machine allows instead of finhook: a relay that answers 202 and
    /// forwards the bytes with the same HTTP stacks and nothing else (`relay`), or that also
    /// appends each body (before the 202) and each attempt's outcome to a file with a
    /// group-committed fdatasync (`durable-relay`), or inserts them into tables of the
    /// `--database` PostgreSQL (`postgres-relay`).
    #[arg(long, value_enum, conflicts_with_all = ["backlog", "hanging", "ordering"])]
    floor: Option<floor::Floor>,
    /// Spread the callbacks over this many LoginIds (callback n carries the n % N-th); the
    /// report then counts deliveries that arrived before an earlier callback of their
    /// LoginId (by `webhook-sequence`). 1 keeps the payload's own LoginId.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "seed")]
    logins: usize,
    /// How the bench's endpoints order their deliveries: `none`, or `login-id` (a LoginId's
    /// callbacks one at a time, in ingest order; use with --logins). Not with --backlog:
    /// while the receiver is down only each LoginId's first callback is tried.
    #[arg(long, value_enum, default_value_t = Ordering::None)]
    ordering: Ordering,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

/// An endpoint's delivery order, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum Ordering {
    None,
    LoginId,
}

#[allow(clippy::print_stdout)]
pub fn run(args: BenchArgs) -> ExitCode {
    let payload = match (&args.payload, args.payload_bytes) {
        (Some(path), _) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => return fail(2, format!("could not read --payload {}: {error}", path.display())),
        },
        (None, size) => match payload::get_accounts_detail(size.unwrap_or(0)) {
            Ok(bytes) => bytes,
            Err(error) => return fail(1, error),
        },
    };
    if let Err(message) = check(&args) {
        return fail(2, message);
    }
    block_on(async move {
        match bench(&args, payload).await {
            Ok(report) if args.json => {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Ok(report) => {
                print_report(&report);
                ExitCode::SUCCESS
            }
            Err(message) => fail(1, message),
        }
    })
}

fn check(args: &BenchArgs) -> Result<(), String> {
    if args.backlog.unwrap_or(args.messages) == 0 || args.concurrency == 0 {
        return Err("--messages (or --backlog) and --concurrency must be at least 1".into());
    }
    if args.rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
        return Err("--rate must be a positive number of callbacks per second".into());
    }
    if args.instances == 0 || args.endpoints < args.instances {
        return Err("--instances must be at least 1, and --endpoints at least --instances".into());
    }
    if !(1..=1_000).contains(&args.hanging_endpoints) {
        return Err("--hanging-endpoints must be between 1 and 1000".into());
    }
    if args.ordering == Ordering::LoginId && args.backlog.is_some() {
        return Err("--ordering login-id cannot build a --backlog: while the receiver is down only each LoginId's first callback is tried".into());
    }
    if !(1..=10_000).contains(&args.logins) {
        return Err("--logins must be between 1 and 10000".into());
    }
    if !(1..=86_400).contains(&args.retry_seconds) {
        return Err("--retry-seconds must be between 1 and 86400".into());
    }
    Ok(())
}

async fn post_json(http: &reqwest::Client, url: String, body: serde_json::Value) -> Result<serde_json::Value, String> {
    let response =
        http.post(&url).bearer_auth(BENCH_KEY).json(&body).send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(format!("{url} answered {status}: {text}"));
    }
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

/// The instances and endpoints of a run.
struct Setup {
    /// Each instance's name.
    names: Vec<String>,
    /// Each instance's callbacks URL.
    urls: Vec<String>,
    /// Each instance's endpoints, as receiver paths.
    paths: Vec<Vec<String>>,
    /// With --hanging: the callbacks URL of the instance whose endpoint never answers.
    hanging_url: Option<String>,
}

/// Creates the instances and their endpoints.
async fn set_up(
    http: &reqwest::Client,
    base: &str,
    receiver: std::net::SocketAddr,
    args: &BenchArgs,
) -> Result<Setup, String> {
    let run = format!(
        "{:x}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
    );
    let names: Vec<String> = (0..args.instances).map(|i| format!("bench-{run}-{i}")).collect();
    for name in &names {
        post_json(http, format!("{base}/v1/instances"), serde_json::json!({ "name": name })).await?;
    }
    let mut paths = vec![Vec::new(); args.instances];
    for j in 0..args.endpoints {
        let (instance, path) = (j % args.instances, format!("/hook/{j}"));
        let mut endpoint = serde_json::json!({ "url": format!("http://{receiver}{path}") });
        if args.ordering == Ordering::LoginId {
            endpoint["ordering"] = serde_json::json!("login_id");
        }
        if args.backlog.is_some() {
            endpoint["retry"] =
                serde_json::json!({ "max_attempts": 100, "interval_seconds": args.retry_seconds, "backoff": "fixed" });
        }
        post_json(http, format!("{base}/v1/instances/{}/endpoints", names[instance]), endpoint).await?;
        paths[instance].push(path);
    }
    let hanging_url = match args.hanging {
        Some(_) => {
            let name = format!("bench-{run}-hanging");
            post_json(http, format!("{base}/v1/instances"), serde_json::json!({ "name": name })).await?;
            for k in 0..args.hanging_endpoints {
                let endpoint = serde_json::json!({ "url": format!("http://{receiver}{}/{k}", receiver::HANGING_PATH) });
                post_json(http, format!("{base}/v1/instances/{name}/endpoints"), endpoint).await?;
            }
            Some(format!("{base}/v1/instances/{name}/callbacks"))
        }
        None => None,
    };
    let urls = names.iter().map(|name| format!("{base}/v1/instances/{name}/callbacks")).collect();
    Ok(Setup { names, urls, paths, hanging_url })
}

async fn bench(args: &BenchArgs, payload: Vec<u8>) -> Result<Report, String> {
    let bodies = payload::with_logins(payload.clone(), args.logins)?;
    let arrivals = Arc::new(Arrivals::default());
    let receiver = receiver::start(arrivals.clone()).await?;
    let http = reqwest::Client::new();
    let (mut server, Setup { names, urls, paths, hanging_url }) = match args.floor {
        Some(floor) => {
            // The endpoints dealt to the instances as `set_up` deals them.
            let names: Vec<String> = (0..args.instances).map(|i| format!("floor-{i}")).collect();
            let mut paths = vec![Vec::new(); args.instances];
            let mut routes = Vec::new();
            for j in 0..args.endpoints {
                let (instance, path) = (j % args.instances, format!("/hook/{j}"));
                routes.push((names[instance].clone(), format!("http://{receiver}{path}")));
                paths[instance].push(path);
            }
            let server = Server::start_floor(floor, &routes, args.database.as_deref()).await?;
            let urls =
                names.iter().map(|name| format!("http://{}/v1/instances/{name}/callbacks", server.addr)).collect();
            (server, Setup { names, urls, paths, hanging_url: None })
        }
        None => {
            let server = Server::start(args.database.as_deref()).await?;
            let setup = set_up(&http, &format!("http://{}", server.addr), receiver, args).await?;
            (server, setup)
        }
    };
    let messages = args.backlog.unwrap_or(args.messages);
    let expected: usize = (0..messages).map(|n| paths[n % args.instances].len()).sum();
    arrivals.set_down(args.backlog.is_some() && !args.seed);

    let progress = ProgressBar::new(messages as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos}/{len} [{bar:40}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let shape = match args.rate {
        Some(per_second) => Shape::Open { per_second },
        None => Shape::Closed { concurrency: args.concurrency },
    };
    if let (Some(url), Some(count)) = (hanging_url, args.hanging) {
        // Not measured: the hanging endpoint's backlog, built before the load starts.
        progress.set_message("queued for the hanging endpoint");
        progress.set_length(count as u64);
        let ticker = progress.clone();
        let closed = Shape::Closed { concurrency: args.concurrency };
        load::ingest(http.clone(), vec![url], vec![bytes::Bytes::from(payload.clone())], count, closed, move |n| {
            ticker.set_position(n as u64)
        })
        .await?;
        progress.set_length(messages as u64);
        progress.set_position(0);
    }
    // The group commit's totals from here (with --seed, the restart below starts them at 0).
    let writer_before = if args.seed { Some(Default::default()) } else { server.group_commit(&http).await };
    let (bench_cpu_before, machine_before) = (server::own_cpu_seconds(), server::machine_ticks());
    let started = Instant::now();
    let ticker = progress.clone();
    let (accepted, cpu_before) = if args.seed {
        progress.set_message("written into the store");
        server.kill().await;
        let scheduled = seed::seed(&server.database, &server.secrets_key, &names, &payload, messages, move |n| {
            ticker.set_position(n as u64)
        })
        .await?;
        if scheduled != expected {
            return Err(format!("seed: {scheduled} deliveries scheduled, {expected} expected"));
        }
        (HashMap::new(), 0.0)
    } else {
        progress.set_message("ingested");
        let cpu_before = server.cpu_seconds();
        let accepted =
            load::ingest(http.clone(), urls, bodies, messages, shape, move |n| ticker.set_position(n as u64)).await?;
        (accepted, cpu_before)
    };
    let ingest_seconds = started.elapsed().as_secs_f64();

    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let recovered = match args.backlog {
        Some(_) if args.seed => {
            // The drain starts with the server: its start-up with the backlog counts.
            let at = Instant::now();
            server.restart().await?;
            Some(at)
        }
        Some(_) => {
            // The backlog is built once every delivery has been attempted and refused.
            progress.set_message("refused");
            progress.set_length(expected as u64);
            while arrivals.refused_deliveries() < expected && Instant::now() < deadline {
                progress.set_position(arrivals.refused_deliveries() as u64);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            arrivals.set_down(false);
            Some(Instant::now())
        }
        None => None,
    };
    progress.set_message("delivered");
    progress.set_length(expected as u64);
    while arrivals.delivered() < expected && Instant::now() < deadline {
        progress.set_position(arrivals.delivered() as u64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    progress.finish_and_clear();
    let delivered = arrivals.delivered();
    let cpu_seconds = server.cpu_seconds() - cpu_before;
    let bench_cpu_seconds = server::own_cpu_seconds() - bench_cpu_before;
    let machine_busy_share = match (machine_before, server::machine_ticks()) {
        (Some((busy, all)), Some((busy_after, all_after))) if all_after > all => {
            busy_after.saturating_sub(busy) as f64 / (all_after - all) as f64
        }
        _ => 0.0,
    };
    let peak_rss_mb = server.peak_rss_mb();
    let measured = recovered.filter(|_| args.seed).unwrap_or(started).elapsed().as_secs_f64();
    let group_commit = match (writer_before, server.group_commit(&http).await) {
        (Some(before), Some(after)) => Some(server::GroupCommit::between(before, after, measured)),
        _ => None,
    };
    server.stop().await;

    let seen = arrivals.snapshot();
    let latencies = latencies(&accepted, &paths, &seen);
    let out_of_order = (args.logins > 1).then(|| out_of_order(&accepted, &paths, &seen, &arrivals.sequences()));
    let last = seen.values().max().copied().unwrap_or(started);
    let drain_seconds = recovered.map(|at| last.saturating_duration_since(at).as_secs_f64());
    let per_second = |count: usize, seconds: f64| count as f64 / seconds.max(f64::EPSILON);
    Ok(Report {
        server: args.floor.map_or("finhook", floor::Floor::name),
        messages,
        delivered,
        expected_deliveries: expected,
        payload_bytes: payload.len(),
        instances: args.instances,
        endpoints: args.endpoints,
        logins: args.logins,
        ordering: args.ordering,
        out_of_order,
        load: if args.rate.is_some() { "open" } else { "closed" },
        concurrency: args.rate.is_none().then_some(args.concurrency),
        offered_per_s: args.rate,
        database: if args.database.is_some() { "postgres" } else { "sqlite" },
        ingest_seconds,
        ingest_per_s: per_second(messages, ingest_seconds),
        delivered_per_s: per_second(delivered, last.duration_since(started).as_secs_f64()),
        latency_ms: (!args.seed).then_some(latencies),
        seeded: args.seed,
        drain_seconds,
        drain_per_s: drain_seconds.map(|seconds| per_second(delivered, seconds)),
        hanging_backlog: args.hanging,
        hanging_endpoints: args.hanging.map(|_| args.hanging_endpoints),
        refused_attempts: args.backlog.map(|_| arrivals.refused()),
        peak_rss_mb,
        cpu_seconds,
        cpu_seconds_per_1000: cpu_seconds * 1000.0 / delivered.max(1) as f64,
        bench_cpu_seconds_per_1000: bench_cpu_seconds * 1000.0 / delivered.max(1) as f64,
        machine_busy_share,
        group_commit,
        build: if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}

/// 202 → arrival, per delivery. A webhook can land before its 202 does; that counts as no
/// latency at all.
fn latencies(
    accepted: &HashMap<String, load::Accepted>,
    paths: &[Vec<String>],
    seen: &HashMap<(String, String), Instant>,
) -> Latency {
    let mut ms: Vec<f64> = Vec::with_capacity(seen.len());
    for (id, acked) in accepted {
        for path in &paths[acked.instance] {
            if let Some(got) = seen.get(&(path.clone(), id.clone())) {
                ms.push(got.saturating_duration_since(acked.at).as_secs_f64() * 1000.0);
            }
        }
    }
    ms.sort_by(f64::total_cmp);
    let quantile = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    Latency { p50: quantile(0.5), p95: quantile(0.95), p99: quantile(0.99), max: quantile(1.0) }
}

/// Deliveries that arrived at their endpoint after one with a higher `webhook-sequence` of
/// the same LoginId had: in arrival order, each one numbered below the highest seen before it.
fn out_of_order(
    accepted: &HashMap<String, load::Accepted>,
    paths: &[Vec<String>],
    seen: &HashMap<(String, String), Instant>,
    sequences: &HashMap<(String, String), u64>,
) -> usize {
    let mut by_login: HashMap<(&str, usize), Vec<(Instant, u64)>> = HashMap::new();
    for (id, acked) in accepted {
        for path in &paths[acked.instance] {
            let key = (path.clone(), id.clone());
            if let (Some(at), Some(sequence)) = (seen.get(&key), sequences.get(&key)) {
                by_login.entry((path.as_str(), acked.login)).or_default().push((*at, *sequence));
            }
        }
    }
    by_login
        .into_values()
        .map(|mut arrivals| {
            arrivals.sort_unstable();
            let mut highest = 0;
            arrivals
                .into_iter()
                .filter(|&(_, sequence)| {
                    let late = sequence < highest;
                    highest = highest.max(sequence);
                    late
                })
                .count()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_counts_as_out_of_order_when_a_later_one_of_its_login_came_first() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let accepted: HashMap<String, load::Accepted> = [("a", 0), ("b", 0), ("c", 0), ("x", 1)]
            .into_iter()
            .map(|(id, login)| (id.to_string(), load::Accepted { instance: 0, login, at: start }))
            .collect();
        let paths = vec![vec!["/hook/0".to_string()]];
        let key = |id: &str| ("/hook/0".to_string(), id.to_string());
        // LoginId 0: 1, 3 then 2 (late); LoginId 1 alone.
        let seen = HashMap::from([(key("a"), at(1)), (key("b"), at(3)), (key("c"), at(2)), (key("x"), at(4))]);
        let sequences = HashMap::from([(key("a"), 1), (key("b"), 2), (key("c"), 3), (key("x"), 1)]);
        assert_eq!(out_of_order(&accepted, &paths, &seen, &sequences), 1);
        let in_order = HashMap::from([(key("a"), at(1)), (key("b"), at(2)), (key("c"), at(3)), (key("x"), at(4))]);
        assert_eq!(out_of_order(&accepted, &paths, &in_order, &sequences), 0);
    }
}
