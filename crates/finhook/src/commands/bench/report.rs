//! What `finhook bench` reports: the JSON object of `--json`, and the same as text.

use serde::Serialize;

use super::{server, Ordering};

#[derive(Debug, Serialize)]
pub(super) struct Latency {
    pub(super) p50: f64,
    pub(super) p95: f64,
    pub(super) p99: f64,
    pub(super) max: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Report {
    /// "finhook", or the floor measured in its place (`--floor`).
    pub(super) server: &'static str,
    pub(super) messages: usize,
    /// Deliveries that reached the receiver (a callback counts once per endpoint).
    pub(super) delivered: usize,
    pub(super) expected_deliveries: usize,
    pub(super) payload_bytes: usize,
    pub(super) instances: usize,
    pub(super) endpoints: usize,
    pub(super) logins: usize,
    pub(super) ordering: Ordering,
    /// With --logins above 1: deliveries that reached their endpoint after a later callback
    /// of the same LoginId had (a higher `webhook-sequence`); 0 is what `--ordering
    /// login-id` promises.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) out_of_order: Option<usize>,
    /// "closed" (with `concurrency`) or "open" (with `offered_per_s`).
    pub(super) load: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) concurrency: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) offered_per_s: Option<f64>,
    pub(super) database: &'static str,
    pub(super) ingest_seconds: f64,
    pub(super) ingest_per_s: f64,
    /// Deliveries per second, from the first ingest to the last arrival.
    pub(super) delivered_per_s: f64,
    /// From the 202 of an ingest to the receiver getting it, per delivery (none with
    /// --seed: nothing was acknowledged over HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) latency_ms: Option<Latency>,
    /// With --seed: the backlog was written into the stopped server's store; the ingest
    /// figures are that write, and the drain starts with the server's start.
    pub(super) seeded: bool,
    /// With --backlog: from the receiver's recovery to the last arrival.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) drain_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) drain_per_s: Option<f64>,
    /// With --hanging: the callbacks queued for the endpoints that never answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hanging_backlog: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hanging_endpoints: Option<usize>,
    /// Attempts the receiver refused while down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) refused_attempts: Option<usize>,
    pub(super) peak_rss_mb: f64,
    pub(super) cpu_seconds: f64,
    pub(super) cpu_seconds_per_1000: f64,
    /// The bench's own CPU (load generator and receiver) per 1,000 deliveries, and the
    /// share of all the machine's cores busy over the run: with the server's, where the
    /// cores went.
    pub(super) bench_cpu_seconds_per_1000: f64,
    pub(super) machine_busy_share: f64,
    /// finhook's group commit over the run (from its `/metrics`); none for a floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) group_commit: Option<server::GroupCommit>,
    pub(super) build: &'static str,
}

#[allow(clippy::print_stdout)]
pub(super) fn print_report(r: &Report) {
    match r.server {
        "finhook" => println!("finhook bench ({} build, {} store)", r.build, r.database),
        floor => println!("finhook bench ({} build, the {floor} in place of the server)", r.build),
    }
    let load = match (r.concurrency, r.offered_per_s) {
        (Some(c), _) => format!("{c} in flight"),
        (_, Some(rate)) => format!("offered at {rate:.0}/s"),
        _ => String::new(),
    };
    println!(
        "  callbacks       {} of {} bytes, {load}, {} instance(s), {} endpoint(s)",
        r.messages, r.payload_bytes, r.instances, r.endpoints
    );
    if r.logins > 1 || r.ordering != Ordering::None {
        let order = r.out_of_order.map(|n| format!(", {n} delivered out of order")).unwrap_or_default();
        println!("  LoginIds        {}, ordering {:?}{order}", r.logins, r.ordering);
    }
    println!("  ingest          {:.0} callbacks/s ({:.2} s)", r.ingest_per_s, r.ingest_seconds);
    println!("  delivered       {} of {} at {:.0}/s", r.delivered, r.expected_deliveries, r.delivered_per_s);
    if let Some(latency) = &r.latency_ms {
        println!(
            "  latency (ms)    p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}   (202 -> receiver)",
            latency.p50, latency.p95, latency.p99, latency.max
        );
    }
    match (r.drain_seconds, r.drain_per_s) {
        (Some(seconds), Some(rate)) if r.seeded => println!(
            "  drain           {rate:.0}/s ({seconds:.2} s from the server's start; the backlog was written into its store)"
        ),
        (Some(seconds), Some(rate)) => println!(
            "  drain           {rate:.0}/s ({seconds:.2} s after the receiver came back; {} attempts refused before)",
            r.refused_attempts.unwrap_or(0)
        ),
        _ => {}
    }
    println!(
        "  server          peak RSS {:.1} MB, {:.3} CPU s per 1,000 deliveries",
        r.peak_rss_mb, r.cpu_seconds_per_1000
    );
    println!(
        "  machine         {:.0} % of its cores busy; the bench itself {:.3} CPU s per 1,000 deliveries",
        r.machine_busy_share * 100.0,
        r.bench_cpu_seconds_per_1000
    );
    if let Some(g) = &r.group_commit {
        println!(
            "  group commit    {} batches of {:.1} writes; the writer busy {:.0} % of the run, {:.0} % committing",
            g.batches,
            g.mean_batch_writes,
            g.writer_busy_share * 100.0,
            g.commit_share * 100.0
        );
    }
}
