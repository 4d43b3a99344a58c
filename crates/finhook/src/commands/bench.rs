//! `finhook bench`: the load generator. Starts a `finhook serve` on a throwaway store and a
//! receiver in this process (both on 127.0.0.1), ingests N callbacks, counts them at the
//! receiver, and reports throughput, end-to-end latency and the server's peak memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::io::AsyncBufReadExt;

use super::{block_on, fail};

/// The default payload: the synthetic GetAccountsDetail fixture (about 5 KB).
const DEFAULT_PAYLOAD: &[u8] = include_bytes!("../../../../testdata/flinks/get_accounts_detail.json");
const BENCH_KEY: &str = "fhk_bench_0123456789abcdefghijklmnopqrstuvwxyzABCDEF";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many callbacks to ingest.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Ingest requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// A callback body to send instead of the GetAccountsDetail fixture.
    #[arg(long, value_name = "FILE")]
    payload: Option<std::path::PathBuf>,
    /// Give up waiting for deliveries after this many seconds.
    #[arg(long = "timeout", value_name = "SECONDS", default_value_t = 300)]
    timeout_seconds: u64,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    messages: usize,
    delivered: usize,
    payload_bytes: usize,
    concurrency: usize,
    ingest_seconds: f64,
    ingest_per_s: f64,
    delivered_per_s: f64,
    /// From the 202 of an ingest to the receiver getting that message.
    latency_ms: Latency,
    peak_rss_mb: f64,
    build: &'static str,
}

/// What the in-process receiver saw: when each webhook-id first arrived.
#[derive(Debug, Default)]
struct Arrivals {
    first_seen: Mutex<HashMap<String, Instant>>,
    count: AtomicUsize,
}

#[allow(clippy::print_stdout)]
pub fn run(args: BenchArgs) -> ExitCode {
    let payload = match &args.payload {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => return fail(2, format!("could not read --payload {}: {error}", path.display())),
        },
        None => DEFAULT_PAYLOAD.to_vec(),
    };
    if args.messages == 0 || args.concurrency == 0 {
        return fail(2, "--messages and --concurrency must be at least 1");
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

#[allow(clippy::print_stdout)]
fn print_report(r: &Report) {
    println!("finhook bench ({} build)", r.build);
    println!("  messages        {} of {} bytes, {} in flight", r.messages, r.payload_bytes, r.concurrency);
    println!("  ingest          {:.0} callbacks/s ({:.2} s)", r.ingest_per_s, r.ingest_seconds);
    println!("  delivered       {} at {:.0} callbacks/s", r.delivered, r.delivered_per_s);
    println!(
        "  latency (ms)    p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}   (202 -> receiver)",
        r.latency_ms.p50, r.latency_ms.p95, r.latency_ms.p99, r.latency_ms.max
    );
    println!("  server peak RSS {:.1} MB", r.peak_rss_mb);
}

/// The server under test: a child `finhook serve`, killed when dropped.
struct Server {
    child: tokio::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start_server() -> Result<Server, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("could not make a temporary directory: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("could not find the finhook executable: {e}"))?;
    let mut child = tokio::process::Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-insecure-loopback", "--database"])
        .arg(format!("sqlite://{}", dir.path().join("bench.db").display()))
        .env("FINHOOK_ADMIN_KEY", BENCH_KEY)
        .env("FINHOOK_LOG", "warn")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start finhook serve: {e}"))?;
    let stdout = child.stdout.take().ok_or("finhook serve has no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line.strip_prefix("finhook listening on http://") {
                return addr.parse::<SocketAddr>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or("finhook serve did not start")?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Server { child, addr, _dir: dir })
}

async fn start_receiver(arrivals: Arc<Arrivals>) -> Result<SocketAddr, String> {
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let arrivals = arrivals.clone();
        async move {
            let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
            let mut seen = arrivals.first_seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.insert(id, Instant::now()).is_none() {
                arrivals.count.fetch_add(1, Ordering::SeqCst);
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("receiver: {e}"))?;
    let addr = listener.local_addr().map_err(|e| format!("receiver: {e}"))?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

async fn post_json(http: &reqwest::Client, url: String, body: serde_json::Value) -> Result<serde_json::Value, String> {
    let response =
        http.post(&url).bearer_auth(BENCH_KEY).json(&body).send().await.map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

async fn bench(args: &BenchArgs, payload: Vec<u8>) -> Result<Report, String> {
    let mut server = start_server().await?;
    let arrivals = Arc::new(Arrivals::default());
    let receiver = start_receiver(arrivals.clone()).await?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    post_json(&http, format!("{base}/v1/instances"), serde_json::json!({ "name": "bench" })).await?;
    post_json(
        &http,
        format!("{base}/v1/instances/bench/endpoints"),
        serde_json::json!({ "url": format!("http://{receiver}/hook") }),
    )
    .await?;

    let progress = ProgressBar::new(args.messages as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} delivered {pos}/{len} [{bar:40}] {per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let accepted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let payload = bytes::Bytes::from(payload);
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (http, next, accepted, payload) = (http.clone(), next.clone(), accepted.clone(), payload.clone());
        let (url, total) = (format!("{base}/v1/instances/bench/callbacks"), args.messages);
        clients.spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < total {
                let response = http
                    .post(&url)
                    .bearer_auth(BENCH_KEY)
                    .body(payload.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if response.status().as_u16() != 202 {
                    return Err(format!("ingest answered {}", response.status()));
                }
                let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
                let id = body["message_id"].as_str().unwrap_or_default().to_string();
                accepted.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Instant::now());
            }
            Ok::<(), String>(())
        });
    }
    while let Some(joined) = clients.join_next().await {
        joined.map_err(|e| e.to_string())??;
        progress.set_position(arrivals.count.load(Ordering::SeqCst) as u64);
    }
    let ingest_seconds = started.elapsed().as_secs_f64();
    progress.set_message(format!("(ingested {} in {ingest_seconds:.1} s)", args.messages));
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    while arrivals.count.load(Ordering::SeqCst) < args.messages && Instant::now() < deadline {
        progress.set_position(arrivals.count.load(Ordering::SeqCst) as u64);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = arrivals.count.load(Ordering::SeqCst);
    progress.finish_and_clear();
    let peak_rss_mb = server.child.id().map(peak_rss_mb).unwrap_or(0.0);
    let _ = server.child.kill().await;

    let seen = arrivals.first_seen.lock().unwrap_or_else(|p| p.into_inner());
    let accepted = accepted.lock().unwrap_or_else(|p| p.into_inner());
    let last = seen.values().max().copied().unwrap_or(started);
    // A webhook can land before its 202 does; that counts as no latency at all.
    let mut latencies: Vec<f64> = accepted
        .iter()
        .filter_map(|(id, at)| seen.get(id).map(|got| got.saturating_duration_since(*at).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let quantile =
        |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
    Ok(Report {
        messages: args.messages,
        delivered,
        payload_bytes: payload.len(),
        concurrency: args.concurrency,
        ingest_seconds,
        ingest_per_s: args.messages as f64 / ingest_seconds,
        delivered_per_s: delivered as f64 / last.duration_since(started).as_secs_f64().max(f64::EPSILON),
        latency_ms: Latency { p50: quantile(0.5), p95: quantile(0.95), p99: quantile(0.99), max: quantile(1.0) },
        peak_rss_mb,
        build: if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}

/// The high-water mark of a process's resident memory (`VmHWM`), from Linux's /proc.
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
