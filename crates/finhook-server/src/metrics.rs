//! Prometheus metrics of one server: counters kept as things happen, and gauges read from
//! the store at scrape time (so they are true across restarts and, later, across nodes).
//!
//! Each `App` owns its registry; nothing is process-global, so tests can run many servers
//! in one process and read each one's numbers.

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::store::{AttemptRecord, FailureKind, StoreStats};
use finhook_core::ids::EndpointId;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub response_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabel {
    pub outcome: String,
    pub error_class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstanceLabel {
    pub instance: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub instance: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointOutcomeLabel {
    pub instance: String,
    pub endpoint: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeadLabel {
    pub instance: String,
    pub hash: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabel {
    pub r#type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    ingested: Family<TypeLabel, Counter>,
    rejected: Family<StatusLabel, Counter>,
    attempts: Family<AttemptLabel, Counter>,
    attempt_seconds: Histogram,
    deliveries: Family<StatusLabel, Gauge>,
    messages: Gauge,
    payload_log_bytes: Gauge,
    lag_seconds: Gauge<f64, AtomicU64>,
    store_write_errors: Family<KindLabel, Counter>,
    endpoint_pauses: Counter,
    store_scans: Counter,
    group_batches: Counter,
    group_writes: Counter,
    group_busy: Counter<f64, AtomicU64>,
    group_commit: Counter<f64, AtomicU64>,
    /// Held while the group-commit counters are moved up to the store's totals, so two
    /// scrapes at once cannot both add the same difference.
    group_sync: std::sync::Mutex<()>,
    connections_shed: Family<ReasonLabel, Counter>,
    ledger_entries: Family<InstanceLabel, Gauge>,
    ledger_head: Family<HeadLabel, Gauge>,
    ledger_queued: Gauge,
    certificate_expiry: Family<EndpointLabel, Gauge>,
    client_certificate_expiry: Family<EndpointLabel, Gauge>,
    failed_in_row: Family<EndpointLabel, Gauge>,
    endpoint_attempts: Family<EndpointOutcomeLabel, Counter>,
    endpoint_attempt_seconds: Family<EndpointLabel, Histogram, fn() -> Histogram>,
    endpoint_backlog: Family<EndpointLabel, Gauge>,
    endpoint_oldest_due: Family<EndpointLabel, Gauge<f64, AtomicU64>>,
    events_published: Family<EventLabel, Counter>,
    events_queued: Gauge,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("finhook");
        let ingested = Family::<TypeLabel, Counter>::default();
        registry.register("callbacks_ingested", "Callbacks accepted (202), by ResponseType", ingested.clone());
        let rejected = Family::<StatusLabel, Counter>::default();
        registry.register("callbacks_rejected", "Ingest requests refused, by HTTP status", rejected.clone());
        let attempts = Family::<AttemptLabel, Counter>::default();
        registry.register("delivery_attempts", "Delivery attempts made, by outcome and error class", attempts.clone());
        let attempt_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        registry.register(
            "delivery_attempt_duration_seconds",
            "Time from request to answer of each attempt",
            attempt_seconds.clone(),
        );
        let deliveries = Family::<StatusLabel, Gauge>::default();
        registry.register("deliveries", "Deliveries in the store, by status", deliveries.clone());
        let messages = Gauge::default();
        registry.register("messages", "Messages (callbacks) in the store", messages.clone());
        let payload_log_bytes = Gauge::default();
        registry.register(
            "payload_log_bytes",
            "Disk space of the embedded store's payload log, the callbacks' bodies beside the database (0 on PostgreSQL)",
            payload_log_bytes.clone(),
        );
        let lag_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "delivery_lag_seconds",
            "How long the most overdue pending delivery has been due (0 when none is)",
            lag_seconds.clone(),
        );
        let store_write_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "store_write_errors",
            "Writes the store did not commit (ingests refused with 503/507, attempt records retried), by kind",
            store_write_errors.clone(),
        );
        let endpoint_pauses = Counter::default();
        registry.register(
            "endpoint_pauses",
            "Times an endpoint's deliveries were paused (circuit opened) after it could not be reached several times in a row",
            endpoint_pauses.clone(),
        );
        let store_scans = Counter::default();
        registry.register(
            "delivery_store_scans",
            "Times the worker looked in the store for an endpoint's due deliveries (retries come due, hand-offs that did not fit, the periodic rescan); under load most deliveries come from ingest without one",
            store_scans.clone(),
        );
        let group_batches = Counter::default();
        registry.register(
            "store_batches",
            "Group-commit batches this node's writer applied: each is one transaction and one commit for every ingest and attempt record queued",
            group_batches.clone(),
        );
        let group_writes = Counter::default();
        registry.register(
            "store_batch_writes",
            "Writes (ingests, attempt records) in those batches; divided by the batches, their mean size",
            group_writes.clone(),
        );
        let group_busy = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "store_writer_busy",
            "Time this node's group-commit writer spent applying batches; a rate near 1 means the writer sets the pace",
            prometheus_client::registry::Unit::Seconds,
            group_busy.clone(),
        );
        let group_commit = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "store_commit",
            "The part of that time spent committing (the fsync that makes each batch durable)",
            prometheus_client::registry::Unit::Seconds,
            group_commit.clone(),
        );
        let connections_shed = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "http_connections_shed",
            "Inbound connections closed or refused to keep the server reachable: idle ones evicted at the connection limit, new ones refused while every connection was busy, accepts that found no file descriptor",
            connections_shed.clone(),
        );
        let ledger_entries = Family::<InstanceLabel, Gauge>::default();
        registry.register(
            "ledger_entries",
            "Entries in each instance's delivery ledger: the seq of its chain head",
            ledger_entries.clone(),
        );
        let ledger_head = Family::<HeadLabel, Gauge>::default();
        registry.register(
            "ledger_head",
            "Each instance's ledger chain head (the last entry's hash, in the label; the value is its seq), to write down and compare with a later export",
            ledger_head.clone(),
        );
        let ledger_queued = Gauge::default();
        registry.register(
            "ledger_queued",
            "Recorded attempts queued for the ledger while another node held the chains (chained within about a second; always 0 on SQLite)",
            ledger_queued.clone(),
        );
        let certificate_expiry = Family::<EndpointLabel, Gauge>::default();
        registry.register(
            "endpoint_certificate_expiry_seconds",
            "Seconds until each enabled HTTPS endpoint's server certificate expires (negative once expired), as the certificate watch last saw it; alert below 14 days (1209600)",
            certificate_expiry.clone(),
        );
        let client_certificate_expiry = Family::<EndpointLabel, Gauge>::default();
        registry.register(
            "endpoint_client_certificate_expiry_seconds",
            "Seconds until each enabled endpoint's own client certificate (mutual TLS) expires (negative once expired); alert below 14 days (1209600)",
            client_certificate_expiry.clone(),
        );
        let failed_in_row = Family::<EndpointLabel, Gauge>::default();
        registry.register(
            "endpoint_failed_attempts_in_row",
            "Attempts to each endpoint that failed since its last success (only endpoints failing now); `endpoint.failing` is sent at `failing_after_attempts`",
            failed_in_row.clone(),
        );
        let events_published = Family::<EventLabel, Counter>::default();
        registry.register(
            "events_published",
            "Operational events stored as messages for the endpoints that take them, by type (one per instance told)",
            events_published.clone(),
        );
        let events_queued = Gauge::default();
        registry.register(
            "events_queued",
            "Operational events waiting in the outbox to be published",
            events_queued.clone(),
        );
        let endpoint_attempts = Family::<EndpointOutcomeLabel, Counter>::default();
        registry.register(
            "endpoint_attempts",
            "Delivery attempts this node made, by instance, endpoint and outcome (success or failure)",
            endpoint_attempts.clone(),
        );
        let endpoint_attempt_seconds: Family<EndpointLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 4.0, 8)));
        registry.register(
            "endpoint_attempt_duration_seconds",
            "Time from request to answer of this node's attempts, by instance and endpoint",
            endpoint_attempt_seconds.clone(),
        );
        let endpoint_backlog = Family::<EndpointLabel, Gauge>::default();
        registry.register(
            "endpoint_backlog",
            "Deliveries pending per endpoint (every node's), by instance and endpoint",
            endpoint_backlog.clone(),
        );
        let endpoint_oldest_due = Family::<EndpointLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "endpoint_oldest_due_seconds",
            "How long each endpoint's most overdue pending delivery has been due (0 when none is)",
            endpoint_oldest_due.clone(),
        );
        Self {
            registry,
            endpoint_attempts,
            endpoint_attempt_seconds,
            endpoint_backlog,
            endpoint_oldest_due,
            failed_in_row,
            events_published,
            events_queued,
            ingested,
            rejected,
            attempts,
            attempt_seconds,
            deliveries,
            messages,
            payload_log_bytes,
            lag_seconds,
            store_write_errors,
            endpoint_pauses,
            store_scans,
            group_batches,
            group_writes,
            group_busy,
            group_commit,
            group_sync: std::sync::Mutex::new(()),
            connections_shed,
            ledger_entries,
            ledger_head,
            ledger_queued,
            certificate_expiry,
            client_certificate_expiry,
        }
    }

    /// A write the store did not commit: `disk_full`, `unavailable` or `internal`.
    pub fn store_write_failed(&self, kind: FailureKind) {
        let kind = match kind {
            FailureKind::DiskFull => "disk_full",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Internal => "internal",
        };
        self.store_write_errors.get_or_create(&KindLabel { kind: kind.to_string() }).inc();
    }

    /// An inbound connection closed or refused: `idle_evicted`, `refused`, `out_of_files`.
    pub fn connection_shed(&self, reason: &'static str) {
        self.connections_shed.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
    }

    /// The worker looked in the store for due deliveries `count` more times.
    pub fn store_scans(&self, count: u64) {
        if count > 0 {
            self.store_scans.inc_by(count);
        }
    }

    /// An endpoint's circuit opened.
    pub fn endpoint_paused(&self) {
        self.endpoint_pauses.inc();
    }

    pub fn callback_ingested(&self, response_type: &str) {
        self.ingested.get_or_create(&TypeLabel { response_type: response_type.to_string() }).inc();
    }

    pub fn callback_rejected(&self, status: u16) {
        self.rejected.get_or_create(&StatusLabel { status: status.to_string() }).inc();
    }

    pub fn attempt_made(&self, instance: &str, endpoint: &EndpointId, attempt: &AttemptRecord) {
        let outcome = if attempt.succeeded { "success" } else { "failure" };
        let label = AttemptLabel {
            outcome: outcome.to_string(),
            error_class: attempt.error_class.map(|c| c.as_str()).unwrap_or_default().to_string(),
        };
        self.attempts.get_or_create(&label).inc();
        let seconds = attempt.latency_ms as f64 / 1000.0;
        self.attempt_seconds.observe(seconds);
        let (instance, endpoint) = (instance.to_string(), endpoint.to_string());
        let by_endpoint = EndpointOutcomeLabel {
            instance: instance.clone(),
            endpoint: endpoint.clone(),
            outcome: outcome.to_string(),
        };
        self.endpoint_attempts.get_or_create(&by_endpoint).inc();
        self.endpoint_attempt_seconds.get_or_create(&EndpointLabel { instance, endpoint }).observe(seconds);
    }

    /// An operational event was stored as a message.
    pub fn event_published(&self, event_type: &str) {
        self.events_published.get_or_create(&EventLabel { r#type: event_type.to_string() }).inc();
    }

    /// The text exposition, with the store's gauges as of `now`.
    pub fn render(&self, stats: &StoreStats, now: DateTime<Utc>) -> Result<String, std::fmt::Error> {
        for (status, count) in &stats.deliveries_by_status {
            self.deliveries.get_or_create(&StatusLabel { status: status.as_str().to_string() }).set(*count);
        }
        self.messages.set(stats.messages);
        self.payload_log_bytes.set(i64::try_from(stats.payload_log_bytes).unwrap_or(i64::MAX));
        let lag = stats.oldest_due_at.map(|due| (now - due).num_milliseconds().max(0) as f64 / 1000.0).unwrap_or(0.0);
        self.lag_seconds.set(lag);
        // The heads move: only the current one of each instance is exposed.
        self.ledger_head.clear();
        for head in &stats.ledger_heads {
            let seq = i64::try_from(head.seq).unwrap_or(i64::MAX);
            self.ledger_entries.get_or_create(&InstanceLabel { instance: head.instance.clone() }).set(seq);
            self.ledger_head
                .get_or_create(&HeadLabel { instance: head.instance.clone(), hash: head.hash.clone() })
                .set(seq);
        }
        self.ledger_queued.set(i64::try_from(stats.ledger_queued).unwrap_or(i64::MAX));
        for (family, expiries) in [
            (&self.certificate_expiry, &stats.certificate_expiries),
            (&self.client_certificate_expiry, &stats.client_certificate_expiries),
        ] {
            family.clear();
            for (instance, endpoint, expires_at) in expiries {
                let label = EndpointLabel { instance: instance.clone(), endpoint: endpoint.to_string() };
                family.get_or_create(&label).set((*expires_at - now).num_seconds());
            }
        }
        self.failed_in_row.clear();
        for (instance, endpoint, count) in &stats.failing_endpoints {
            let label = EndpointLabel { instance: instance.clone(), endpoint: endpoint.to_string() };
            self.failed_in_row.get_or_create(&label).set(i64::try_from(*count).unwrap_or(i64::MAX));
        }
        self.events_queued.set(i64::try_from(stats.events_queued).unwrap_or(i64::MAX));
        // The writer's totals only grow: each counter is moved up to its total.
        let totals = stats.group_commit;
        let _one_at_a_time = self.group_sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.group_batches.inc_by(totals.batches.saturating_sub(self.group_batches.get()));
        self.group_writes.inc_by(totals.writes.saturating_sub(self.group_writes.get()));
        self.group_busy.inc_by((totals.busy_seconds - self.group_busy.get()).max(0.0));
        self.group_commit.inc_by((totals.commit_seconds - self.group_commit.get()).max(0.0));
        self.endpoint_backlog.clear();
        self.endpoint_oldest_due.clear();
        for (instance, endpoint, backlog, oldest_due_at) in &stats.endpoint_backlogs {
            let label = EndpointLabel { instance: instance.clone(), endpoint: endpoint.to_string() };
            self.endpoint_backlog.get_or_create(&label).set(i64::try_from(*backlog).unwrap_or(i64::MAX));
            let due = oldest_due_at.map_or(0.0, |due| (now - due).num_milliseconds().max(0) as f64 / 1000.0);
            self.endpoint_oldest_due.get_or_create(&label).set(due);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
