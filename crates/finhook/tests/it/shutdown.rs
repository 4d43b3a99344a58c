//! A real `finhook serve` process stopped with SIGTERM while it has work: it stops taking
//! deliveries at once, lets the attempts in flight end (at worst in their timeout), and
//! exits cleanly in time for an orchestrator's grace period, losing nothing.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const TIMEOUT_SECONDS: u64 = 2;

async fn serve(dir: &std::path::Path) -> FinhookProcess {
    let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--allow-insecure-loopback", "--delivery-timeout"]
        .map(String::from)
        .to_vec();
    args.push(TIMEOUT_SECONDS.to_string());
    args.push("--database".into());
    args.push(format!("sqlite://{}", dir.join("finhook.db").display()));
    FinhookProcess::start(dir, &args, "finhook listening on http://").await
}

#[tokio::test]
async fn sigterm_with_a_due_backlog_exits_within_the_delivery_timeout_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = TestReceiver::start(&[], Reply::Hang).await;
    let mut server = serve(dir.path()).await;
    let created = server.admin(Method::POST, "/v1/instances", json!({ "name": "acme" })).await;
    assert_eq!(created.status().as_u16(), 201);
    for path in ["/a", "/b"] {
        let endpoint =
            server.admin(Method::POST, "/v1/instances/acme/endpoints", json!({ "url": receiver.url(path) })).await;
        assert_eq!(endpoint.status().as_u16(), 201);
    }
    const CALLBACKS: usize = 150;
    for _ in 0..CALLBACKS {
        let accepted = server.admin(Method::POST, "/v1/instances/acme/callbacks", fixture("kyc.json")).await;
        assert_eq!(accepted.status().as_u16(), 202);
    }
    // Attempts are in flight (the receiver never answers) and most deliveries wait.
    receiver.wait_for(2).await;

    let pid = server.child.id().expect("pid").to_string();
    let signalled = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM");
    assert!(signalled.success());
    let asked = Instant::now();
    let exited = tokio::time::timeout(Duration::from_secs(60), server.child.wait()).await;
    let took = asked.elapsed();
    let status = exited.expect("finhook did not exit within a minute of SIGTERM").expect("wait");
    assert!(status.success(), "exit status {status:?}");
    // The attempts in flight end in their timeout; nothing else may hold the exit up.
    let allowed = Duration::from_secs(TIMEOUT_SECONDS + 2);
    assert!(took < allowed, "exited {took:?} after SIGTERM; allowed {allowed:?}");

    // Nothing lost: after a restart, every delivery of every callback is still there,
    // pending (the interrupted attempts were recorded as timeouts and wait for a retry).
    let server = serve(dir.path()).await;
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let path = format!("/v1/instances/acme/messages?limit=100{cursor}");
        let page: Value = server.admin(Method::GET, &path, ()).await.json().await.expect("json");
        seen += page["data"].as_array().expect("data").len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, CALLBACKS, "every acknowledged callback is still stored");
    let metrics = server.admin(Method::GET, "/metrics", ()).await.text().await.expect("text");
    let pending = metrics
        .lines()
        .find(|line| line.starts_with("finhook_deliveries{status=\"pending\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    assert_eq!(pending, Some((2 * CALLBACKS) as f64), "{metrics}");
    server.kill().await;
}
