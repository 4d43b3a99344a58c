//! The admin client: `finhook instances|endpoints|messages` against a real server.

use serde_json::Value;

use crate::helpers::*;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn finhook(app: &TestApp, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .args(args)
        .args(["--server", &app.url("")])
        .env("FINHOOK_ADMIN_KEY", ADMIN_KEY)
        .output()
        .await
        .expect("run finhook");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn the_admin_client_manages_instances_endpoints_and_messages() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;

    let created = finhook(&app, &["instances", "create", "acme", "--json"]).await;
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let created: Value = serde_json::from_str(&created.stdout).expect("json");
    assert!(created["api_key"].as_str().is_some_and(|k| k.starts_with("fhk_")));
    let listed = finhook(&app, &["instances", "list"]).await;
    assert!(
        listed.stdout.contains("NAME") && listed.stdout.contains("acme") && listed.stdout.contains("live"),
        "{}",
        listed.stdout
    );

    let endpoint = finhook(
        &app,
        &[
            "endpoints",
            "create",
            &receiver.url("/hook"),
            "--instance",
            "acme",
            "--event-type",
            "KYC",
            "--max-attempts",
            "3",
            "--json",
        ],
    )
    .await;
    assert_eq!(endpoint.code, Some(0), "{}", endpoint.stderr);
    let endpoint: Value = serde_json::from_str(&endpoint.stdout).expect("json");
    assert_eq!(endpoint["retry"]["max_attempts"], 3);
    assert_eq!(endpoint["event_types"], serde_json::json!(["KYC"]));
    let id = endpoint["id"].as_str().expect("id");
    let table = finhook(&app, &["endpoints", "list", "--instance", "acme"]).await;
    assert!(table.stdout.contains(id) && table.stdout.contains(&receiver.url("/hook")), "{}", table.stdout);

    let message = app.ingest("acme", fixture("kyc.json")).await;
    app.deliver_due().await;
    let listed = finhook(&app, &["messages", "list", "--instance", "acme", "--response-type", "KYC"]).await;
    assert!(
        listed.stdout.contains(&message) && listed.stdout.contains("c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e"),
        "{}",
        listed.stdout
    );
    let shown = finhook(&app, &["messages", "show", &message, "--instance", "acme"]).await;
    assert!(shown.stdout.contains("pending") && shown.stdout.contains(id), "{}", shown.stdout);
    assert!(!shown.stdout.contains("Okonkwo"), "the table view leaves the payload (PII) out");
    let redelivered = finhook(&app, &["messages", "redeliver", &message, "--instance", "acme", "--json"]).await;
    assert_eq!(redelivered.code, Some(0), "{}", redelivered.stderr);
    let disabled = finhook(&app, &["endpoints", "disable", id, "--instance", "acme", "--json"]).await;
    assert_eq!(serde_json::from_str::<Value>(&disabled.stdout).expect("json")["enabled"], false);

    let ed = finhook(
        &app,
        &["endpoints", "create", &receiver.url("/ed"), "--instance", "acme", "--signing", "ed25519", "--json"],
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&ed.stdout).expect("json")["signing"], "ed25519", "{}", ed.stderr);
    let table = finhook(&app, &["endpoints", "list", "--instance", "acme"]).await;
    assert!(table.stdout.contains("SIGNING") && table.stdout.contains("ed25519"), "{}", table.stdout);
    let bad =
        finhook(&app, &["endpoints", "create", &receiver.url("/x"), "--instance", "acme", "--signing", "rsa"]).await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);

    let refused = finhook(&app, &["endpoints", "create", "http://hooks.example.com/", "--instance", "acme"]).await;
    assert_eq!(refused.code, Some(1));
    assert!(refused.stderr.contains("422") && refused.stderr.contains("$.url"), "{}", refused.stderr);
    let usage = finhook(&app, &["messages", "list"]).await;
    assert_eq!(usage.code, Some(2));
    assert!(usage.stderr.contains("--instance"), "{}", usage.stderr);
    let unknown = finhook(&app, &["instances", "show", "nobody"]).await;
    assert_eq!(unknown.code, Some(1));
    assert!(unknown.stderr.contains("404"), "{}", unknown.stderr);
}
