//! `/openapi.json` through real tools: `openapi-spec-validator` validates the document,
//! `datamodel-code-generator` generates typed models from it, and the models then parse
//! what the server really answers, so the document cannot drift from the handlers. The
//! tools are pinned in `.ci/tools.txt`; `scripts/test` installs them (`scripts/tools`).

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// Runs `program` with `args`; its stdout, or a panic with both of its streams.
fn run(program: &str, args: &[&str], dir: &Path) -> (String, String) {
    let output = Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("could not run {program} ({e}): run the tests with scripts/test, which installs the pinned tools, or eval \"$(scripts/tools)\" first")
    });
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success(), "{program} {args:?} failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn the_openapi_document_validates_generates_models_and_they_parse_real_answers() {
    let app = spawn_app_on(Backend::Sqlite, Options::default()).await;
    let dir = tempfile::tempdir().expect("a directory");
    let document = app.http.get(app.url("/openapi.json")).send().await.expect("get").bytes().await.expect("body");
    std::fs::write(dir.path().join("openapi.json"), &document).expect("write");

    let (said, _) = run("python3", &["-m", "openapi_spec_validator", "openapi.json"], dir.path());
    assert_eq!(said.trim(), "openapi.json: OK");

    let generate = [
        "--input",
        "openapi.json",
        "--input-file-type",
        "openapi",
        "--output",
        "finhook_models.py",
        "--output-model-type",
        "pydantic_v2.BaseModel",
        "--formatters",
        "builtin",
        // A field the server sends and the document does not name fails the parse below.
        "--extra-fields",
        "forbid",
    ];
    let (_, warnings) = run("datamodel-codegen", &generate, dir.path());
    assert_eq!(warnings, "", "the generator warned");

    // Real answers, each parsed by the model the document names for it.
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": receiver.url("/hook") })).await;
    let id = endpoint["id"].as_str().expect("id");
    let message = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    assert_eq!(app.deliver_due().await, 1);
    let mut answers: Vec<(&str, Value)> = vec![("EndpointView", endpoint.clone())];
    for (model, path) in [
        ("InstancePage", "/v1/instances".to_string()),
        ("InstanceView", "/v1/instances/acme".to_string()),
        ("EndpointPage", "/v1/instances/acme/endpoints".to_string()),
        ("EndpointView", format!("/v1/instances/acme/endpoints/{id}")),
        ("EndpointDeliveriesPage", format!("/v1/instances/acme/endpoints/{id}/deliveries")),
        ("Page", "/v1/instances/acme/messages".to_string()),
        ("MessageDetailView", format!("/v1/instances/acme/messages/{message}")),
        ("AuditPage", "/v1/audit".to_string()),
        ("Problem", "/v1/instances/nobody".to_string()),
    ] {
        answers.push((model, app.admin(Method::GET, &path, None).await.1));
    }
    let (_, sent) = app.admin(Method::POST, &format!("/v1/instances/acme/endpoints/{id}/test"), None).await;
    answers.push(("TestSentView", sent));
    app.clock.advance(chrono::Duration::seconds(6));
    let (_, feed) = app.admin(Method::GET, "/v1/instances/acme/feed?status=all", None).await;
    assert_eq!(feed["data"][0]["id"], message.as_str(), "the feed holds the settled message: {feed}");
    answers.push(("FeedPageView", feed));
    let (_, acked) =
        app.admin(Method::POST, "/v1/instances/acme/feed/ack", Some(json!({ "message_ids": [message] }))).await;
    answers.push(("AckView", acked));
    let (_, link) = app.admin(Method::POST, "/v1/instances/acme/portal-link", Some(json!({ "read_only": true }))).await;
    answers.push(("CreatedPortalLink", link));
    let (_, links) = app.admin(Method::GET, "/v1/instances/acme/portal-links", None).await;
    answers.push(("PortalLinkPage", links));
    let checks: Vec<Value> = answers.iter().map(|(model, answer)| json!([model, answer.to_string()])).collect();
    std::fs::write(dir.path().join("answers.json"), Value::Array(checks).to_string()).expect("write");
    let parse = "import json, finhook_models as m\n\
                 for model, answer in json.load(open('answers.json')):\n    \
                     getattr(m, model).model_validate_json(answer)\n\
                 print('parsed', len(json.load(open('answers.json'))))";
    let (said, _) = run("python3", &["-c", parse], dir.path());
    assert_eq!(said.trim(), format!("parsed {}", answers.len()));
}
