//! Slow, idle and greedy clients against a real `finhook serve` process: the header and
//! body timeouts, the connection limit under a small file limit, and the memory budget of
//! callback bodies. Each would hold the API, or the server's memory, without its limit.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

async fn serve(dir: &std::path::Path, settings: &str, max_open_files: Option<u32>) -> FinhookProcess {
    write_file(dir, "finhook.toml", settings);
    let args = ["serve", "--listen", "127.0.0.1:0", "--allow-insecure-loopback", "--database"].map(String::from);
    let mut args = args.to_vec();
    args.push(format!("sqlite://{}", dir.join("finhook.db").display()));
    FinhookProcess::start_with_file_limit(dir, &args, "finhook listening on http://", max_open_files).await
}

/// Everything the server sends on `stream` until it closes it.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection in time")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn metric(server: &FinhookProcess, line_start: &str) -> String {
    let text = server.admin(Method::GET, "/metrics", ()).await.text().await.expect("metrics");
    text.lines().find(|line| line.starts_with(line_start)).unwrap_or_default().to_string()
}

#[tokio::test]
async fn two_thousand_idle_connections_do_not_keep_healthz_or_ingest_out() {
    let files = finhook_server::http::serve::raise_file_limit();
    assert!(files >= 2_500, "this test opens 2,000 connections; the test process may open only {files} files");
    let dir = tempfile::tempdir().expect("tempdir");
    // 512 files: before the connection limit, about 500 idle connections took every
    // descriptor and no new connection was accepted at all.
    let server = serve(dir.path(), "", Some(512)).await;
    let mut idle = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    let client = reqwest::Client::builder().timeout(PATIENCE).build().expect("client");
    let health = client.get(server.url("/healthz")).send().await.expect("healthz answers");
    assert_eq!(health.status().as_u16(), 200);
    let created = server.admin(Method::POST, "/v1/instances", json!({ "name": "acme" })).await;
    assert_eq!(created.status().as_u16(), 201);
    let ingested = server.admin(Method::POST, "/v1/instances/acme/callbacks", fixture("kyc.json")).await;
    assert_eq!(ingested.status().as_u16(), 202);
    let evicted = metric(&server, "finhook_http_connections_shed_total{reason=\"idle_evicted\"}").await;
    let count: u64 = evicted.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(count >= 1_000, "idle connections were closed to make room: {evicted}");
    drop(idle);
}

#[tokio::test]
async fn trickled_headers_and_idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), "http_header_timeout_seconds = 1\n", None).await;
    let mut trickled = TcpStream::connect(server.addr).await.expect("connect");
    trickled.write_all(b"POST /v1/instances HTTP/1.1\r\nhost: finhook\r\n").await.expect("write");
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut kept_alive = TcpStream::connect(server.addr).await.expect("connect");
    kept_alive.write_all(b"GET /healthz HTTP/1.1\r\nhost: finhook\r\n\r\n").await.expect("write");
    let started = std::time::Instant::now();
    for stream in [&mut trickled, &mut silent] {
        let answer = read_until_closed(stream).await;
        assert!(!answer.contains("201"), "nothing was created: {answer}");
    }
    let answer = read_until_closed(&mut kept_alive).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(10), "closed by the 1 s timeout, not by chance");
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve(dir.path(), "http_body_timeout_seconds = 1\n", None).await;
    server.admin(Method::POST, "/v1/instances", json!({ "name": "acme" })).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /v1/instances/acme/callbacks HTTP/1.1\r\nhost: finhook\r\nauthorization: Bearer {ADMIN_KEY}\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{{\"ResponseType\""
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("urn:finhook:problem:body-timeout") && answer.contains("nothing was stored"), "{answer}");
    let messages = server.admin(Method::GET, "/v1/instances/acme/messages", ()).await;
    let listed: serde_json::Value = messages.json().await.expect("json");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0), "{listed}");
}

#[tokio::test]
async fn bodies_past_the_memory_budget_wait_then_get_503_with_retry_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A body waits for room at most half as long as it may take to arrive: 2 s here, while
    // the stalled upload keeps its share for 4 s.
    let settings = "max_body_bytes = 1048576\nmax_bodies_in_memory_bytes = 1048576\nhttp_body_timeout_seconds = 4\n";
    let server = serve(dir.path(), settings, None).await;
    server.admin(Method::POST, "/v1/instances", json!({ "name": "acme" })).await;
    // An upload that declares 1,048,000 bytes (of a budget of 1,048,576) holds that share of the budget while it
    // arrives; a callback of 5 KB does not fit beside it.
    let mut upload = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /v1/instances/acme/callbacks HTTP/1.1\r\nhost: finhook\r\nauthorization: Bearer {ADMIN_KEY}\r\ncontent-type: application/json\r\ncontent-length: 1048000\r\n\r\n{{"
    );
    upload.write_all(head.as_bytes()).await.expect("write");
    let mut refused = None;
    for _ in 0..50 {
        let response = server.admin(Method::POST, "/v1/instances/acme/callbacks", fixture("kyc.json")).await;
        if response.status().as_u16() == 503 {
            refused = Some(response);
            break;
        }
        // The upload's request may not have reached the budget yet: this one was stored.
        assert_eq!(response.status().as_u16(), 202);
    }
    let refused = refused.expect("a callback past the budget is refused");
    assert_eq!(refused.headers()["retry-after"], "1");
    let problem: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(problem["type"], "urn:finhook:problem:busy", "{problem}");
    drop(upload);
    let stored = server.admin(Method::POST, "/v1/instances/acme/callbacks", fixture("kyc.json")).await;
    assert_eq!(stored.status().as_u16(), 202, "the budget is back once the upload is gone");
}
