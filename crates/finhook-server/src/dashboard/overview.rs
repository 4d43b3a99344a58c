//! The dashboard's overview, for an operator's first question (is anything failing?):
//! failing endpoints first, the last hour and day in numbers, attempts per hour over the
//! last day as a chart (SVG drawn here: the pages run no script), and each instance's
//! failed messages and failing endpoints.

use std::collections::HashMap;
use std::fmt::Write;

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, Duration, Timelike, Utc};

use super::pages::{caller_at, failure, render, time};
use crate::app::AppState;
use crate::http::{ApiError, Caller};

struct FailingRow {
    instance: String,
    endpoint: String,
    since: String,
    count: u64,
}

struct InstanceRow {
    name: String,
    mode: &'static str,
    customer_id: String,
    created_at: String,
    failed_messages: u64,
    failing_endpoints: u64,
}

/// One window's numbers.
struct Window {
    label: &'static str,
    callbacks: u64,
    attempts: u64,
    failed: u64,
    /// "98.5 %", or "-" without attempts.
    success: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    signed_in: bool,
    failing: Vec<FailingRow>,
    windows: Vec<Window>,
    pending: i64,
    lag: String,
    /// The last day's attempts per hour, as SVG (numbers and times only).
    chart: String,
    messages: i64,
    deliveries: Vec<(&'static str, i64)>,
    instances: Vec<InstanceRow>,
}

pub async fn overview(State(state): State<AppState>, uri: axum::extract::OriginalUri, jar: CookieJar) -> Response {
    let caller = match caller_at(&state, &jar, Some(&uri.0)).await {
        Ok(caller) => caller,
        Err(redirect) => return redirect,
    };
    if let Caller::Instance(own) = caller {
        return Redirect::to(&format!("/dashboard/instances/{}", own.name)).into_response();
    }
    match page(&state).await {
        Ok(page) => render(&page),
        Err(error) => failure(error),
    }
}

async fn page(state: &AppState) -> Result<OverviewPage, ApiError> {
    let store = state.store.as_ref();
    let now = state.clock.now();
    let stats = store.stats(now).await?;
    let failing = store.failing_endpoints(None).await?;
    let names: HashMap<_, _> = store.list_instances().await?.into_iter().map(|i| (i.id, i)).collect();
    let hours = store.attempts_by_hour(now - Duration::hours(23)).await?;
    let health = store.endpoint_health(None, now).await?;
    let mut windows = Vec::new();
    for (label, span) in [("Last hour", Duration::hours(1)), ("Last 24 hours", Duration::days(1))] {
        let callbacks = store.messages_since(now - span).await?;
        let (attempts, succeeded) = health.iter().fold((0, 0), |(a, s), (_, h)| {
            let window = if span == Duration::hours(1) { &h.last_hour } else { &h.last_day };
            (a + window.attempts, s + window.succeeded)
        });
        let success = if attempts == 0 {
            "-".to_string()
        } else {
            format!("{:.1} %", succeeded as f64 * 100.0 / attempts as f64)
        };
        windows.push(Window { label, callbacks, attempts, failed: attempts - succeeded, success });
    }
    let failed_messages: HashMap<String, u64> = store.failed_by_instance().await?.into_iter().collect();
    let mut failing_per_instance: HashMap<String, u64> = HashMap::new();
    let failing = failing
        .into_iter()
        .map(|(endpoint, run)| {
            let instance = stats
                .failing_endpoints
                .iter()
                .find(|(_, id, _)| *id == endpoint)
                .map(|(name, ..)| name.clone())
                .unwrap_or_default();
            *failing_per_instance.entry(instance.clone()).or_default() += 1;
            FailingRow {
                instance,
                endpoint: endpoint.to_string(),
                since: time(run.since),
                count: run.failed_attempts_in_row,
            }
        })
        .collect();
    let pending = stats.deliveries_by_status.iter().find(|(s, _)| s.as_str() == "pending").map_or(0, |(_, n)| *n);
    let lag = stats.oldest_due_at.map_or("none".to_string(), |due| format!("{} s", (now - due).num_seconds().max(0)));
    let mut instances: Vec<InstanceRow> = names
        .into_values()
        .map(|i| InstanceRow {
            failed_messages: failed_messages.get(&i.name).copied().unwrap_or(0),
            failing_endpoints: failing_per_instance.get(&i.name).copied().unwrap_or(0),
            mode: i.mode.as_str(),
            created_at: time(i.created_at),
            customer_id: i.customer_id,
            name: i.name,
        })
        .collect();
    // The instances in trouble first, then by name.
    instances.sort_by(|a, b| {
        (b.failing_endpoints, b.failed_messages)
            .cmp(&(a.failing_endpoints, a.failed_messages))
            .then(a.name.cmp(&b.name))
    });
    Ok(OverviewPage {
        signed_in: true,
        failing,
        windows,
        pending,
        lag,
        chart: chart(&hours, now),
        messages: stats.messages,
        deliveries: stats.deliveries_by_status.iter().map(|(status, count)| (status.as_str(), *count)).collect(),
        instances,
    })
}

/// 24 bars, one per hour ending with the current one: delivered attempts in green, failed
/// in red on top, each with a tooltip. Only numbers and times go in: nothing to escape.
fn chart(hours: &[(DateTime<Utc>, u64, u64)], now: DateTime<Utc>) -> String {
    const BAR: u64 = 24;
    const HEIGHT: u64 = 120;
    let current = now.with_minute(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0)).unwrap_or(now);
    let slots: Vec<(DateTime<Utc>, u64, u64)> = (0..24)
        .map(|n| {
            let hour = current - Duration::hours(23 - n);
            let (attempts, ok) =
                hours.iter().find(|(h, ..)| *h == hour).map_or((0, 0), |(_, attempts, ok)| (*attempts, *ok));
            (hour, attempts, ok)
        })
        .collect();
    let peak = slots.iter().map(|(_, attempts, _)| *attempts).max().unwrap_or(0).max(1);
    let mut svg = format!(
        r#"<svg id="attempts-chart" role="img" aria-label="Attempts per hour, last 24 hours" width="{}" height="{}" viewBox="0 0 {} {}">"#,
        BAR * 24,
        HEIGHT + 16,
        BAR * 24,
        HEIGHT + 16
    );
    for (n, (hour, attempts, ok)) in slots.iter().enumerate() {
        let x = n as u64 * BAR;
        let failed = attempts - ok;
        let (ok_height, failed_height) = (ok * HEIGHT / peak, failed * HEIGHT / peak);
        let _ = write!(
            svg,
            r##"<g><title>{}: {attempts} attempts, {failed} failed</title><rect x="{}" y="{}" width="{}" height="{ok_height}" fill="#3fb950"/><rect x="{}" y="{}" width="{}" height="{failed_height}" fill="#f85149"/></g>"##,
            hour.format("%H:00"),
            x + 2,
            HEIGHT - ok_height,
            BAR - 4,
            x + 2,
            HEIGHT - ok_height - failed_height,
            BAR - 4,
        );
        if n % 6 == 0 {
            let _ = write!(
                svg,
                r#"<text x="{}" y="{}" font-size="10">{}</text>"#,
                x + 2,
                HEIGHT + 12,
                hour.format("%H:00")
            );
        }
    }
    svg.push_str("</svg>");
    svg
}
