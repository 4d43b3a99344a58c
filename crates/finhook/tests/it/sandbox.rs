//! The Flinks-compatible sandbox: the banking API's flows and codes, connections whose
//! callbacks go out through the delivery engine with the very data the API returns, the
//! Connect redirect, and `finhook trigger`.

use reqwest::Method;
use serde_json::{json, Value};

use super::spawn_app;
use crate::helpers::*;

struct Sandbox {
    customer_id: String,
    api_key: String,
}

/// A sandbox instance `bank` with the given aggregation delay, and its endpoint.
async fn sandbox(app: &TestApp, receiver: &TestReceiver, delay_ms: u64) -> Sandbox {
    let (status, created) =
        app.admin(Method::POST, "/v1/instances", Some(json!({ "name": "bank", "mode": "sandbox" }))).await;
    assert_eq!(status, 201, "{created}");
    let (status, patched) = app
        .admin(Method::PATCH, "/v1/instances/bank", Some(json!({ "sandbox": { "aggregation_delay_ms": delay_ms } })))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["sandbox"]["aggregation_delay_ms"], delay_ms);
    app.create_endpoint("bank", json!({ "url": receiver.url("/flinks") })).await;
    Sandbox {
        customer_id: created["customer_id"].as_str().expect("customer_id").to_string(),
        api_key: created["api_key"].as_str().expect("api_key").to_string(),
    }
}

/// Calls the sandbox's Flinks banking API.
async fn flinks(
    app: &TestApp,
    sandbox: &Sandbox,
    method: Method,
    endpoint: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let url = app.url(&format!("/v3/{}/BankingServices/{endpoint}", sandbox.customer_id));
    let mut request = app.http.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("flinks call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn authorize(app: &TestApp, sandbox: &Sandbox, body: Value) -> (u16, Value) {
    flinks(app, sandbox, Method::POST, "Authorize", Some(body), &[]).await
}

fn without_response_type(mut value: Value) -> Value {
    value.as_object_mut().expect("object").remove("ResponseType");
    value
}

#[tokio::test]
async fn a_connection_sends_kyc_then_accounts_with_exactly_the_data_the_api_returns() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let sandbox = sandbox(&app, &receiver, 0).await;

    let (status, token) = flinks(&app, &sandbox, Method::POST, "GenerateAuthorizeToken", None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(token["HttpStatusCode"], 200);
    let token = token["Token"].as_str().expect("Token").to_string();
    let (status, authorized) = flinks(
        &app,
        &sandbox,
        Method::POST,
        "Authorize",
        Some(greatday("FlinksCapital")),
        &[("flinks-auth-key", &token)],
    )
    .await;
    assert_eq!(status, 200, "{authorized}");
    let login_id = authorized["Login"]["Id"].as_str().expect("LoginId").to_string();
    let request_id = authorized["RequestId"].as_str().expect("RequestId").to_string();
    assert_eq!(authorized["Institution"], "FlinksCapital");
    assert_eq!(authorized["InstitutionId"], 14);
    assert_eq!(
        authorized["Links"][0],
        json!({ "rel": "AccountsDetail", "href": "/GetAccountsDetail", "example": null })
    );

    assert_eq!(app.deliver_due().await, 2);
    let received = receiver.wait_for(2).await;
    let bodies: Vec<Value> = received.iter().map(|r| serde_json::from_slice(&r.body).expect("json")).collect();
    let kyc = bodies.iter().find(|b| b["ResponseType"] == "KYC").expect("KYC");
    let detail = bodies.iter().find(|b| b["ResponseType"] == "GetAccountsDetail").expect("GetAccountsDetail");
    for body in [kyc, detail] {
        assert_eq!(body["Login"]["Id"], login_id.as_str());
        assert_eq!(body["RequestId"], request_id.as_str());
        assert_eq!(body["Tag"], "user=42");
    }
    let messages = app.messages("bank", &format!("?login_id={login_id}")).await;
    let order: Vec<&str> = messages["data"]
        .as_array()
        .expect("data")
        .iter()
        .rev()
        .map(|m| m["response_type"].as_str().expect("t"))
        .collect();
    assert_eq!(order, ["KYC", "GetAccountsDetail"], "KYC is ingested first");

    let ask = json!({ "RequestId": request_id, "WithAccountIdentity": true, "WithTransactions": true, "DaysOfTransactions": "Days90" });
    let (status, pending) = flinks(&app, &sandbox, Method::POST, "GetAccountsDetail", Some(ask.clone()), &[]).await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["FlinksCode"], "OPERATION_PENDING");
    assert_eq!(pending["Links"][0]["example"], format!("/GetAccountsDetailAsync/{request_id}"));
    let (status, via_get) =
        flinks(&app, &sandbox, Method::GET, &format!("GetAccountsDetailAsync/{request_id}"), None, &[]).await;
    assert_eq!(status, 200, "{via_get}");
    let (status, via_post) =
        flinks(&app, &sandbox, Method::POST, &format!("GetAccountsDetailAsync/{request_id}"), None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(via_get, via_post);
    assert_eq!(via_get, without_response_type(detail.clone()), "the webhook carries exactly what the API returns");
    assert_eq!(via_get["Accounts"][0]["Holder"], kyc["Holders"][0], "the holder is the same person in both callbacks");
    let (status, summary) =
        flinks(&app, &sandbox, Method::POST, "GetAccountsSummary", Some(json!({ "requestId": request_id })), &[]).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["Accounts"].as_array().expect("accounts").len(), 3);
    assert!(summary["Accounts"][0].get("Transactions").is_none());
}

#[tokio::test]
async fn an_investment_connection_also_sends_investments() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let sandbox = sandbox(&app, &receiver, 0).await;
    let (status, authorized) = authorize(&app, &sandbox, greatday("TundraWealth")).await;
    assert_eq!(status, 200, "{authorized}");
    assert_eq!(app.deliver_due().await, 3);
    let bodies: Vec<Value> =
        receiver.wait_for(3).await.iter().map(|r| serde_json::from_slice(&r.body).expect("json")).collect();
    let wealth = bodies.iter().find(|b| b["ResponseType"] == "Investments").expect("Investments");
    assert_eq!(wealth["Login"]["Id"], authorized["Login"]["Id"]);
    assert_eq!(wealth["RequestId"], authorized["RequestId"]);
    let accounts = wealth["Institution"]["Accounts"].as_array().expect("accounts");
    let types: Vec<&str> = accounts.iter().map(|a| a["Type"].as_str().expect("type")).collect();
    assert_eq!(types, ["tfsa", "rrsp"]);
    assert!(accounts.iter().all(|a| !a["Positions"].as_array().expect("positions").is_empty()));
}

#[tokio::test]
async fn mfa_and_error_codes_follow_flinks() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let sandbox = sandbox(&app, &receiver, 0).await;

    let (status, challenge) = authorize(
        &app,
        &sandbox,
        json!({ "Institution": "FlinksCapital", "Username": "test_mfa", "Password": "Everyday" }),
    )
    .await;
    assert_eq!(status, 203, "{challenge}");
    assert_eq!(challenge["SecurityChallenges"][0]["Type"], "QuestionAndAnswer");
    let prompt = challenge["SecurityChallenges"][0]["Prompt"].as_str().expect("prompt").to_string();
    let request_id = challenge["RequestId"].as_str().expect("RequestId").to_string();
    assert_eq!(app.deliver_due().await, 0, "nothing is sent before the challenge is answered");
    let (status, pending_mfa) =
        flinks(&app, &sandbox, Method::POST, "GetAccountsDetail", Some(json!({ "RequestId": request_id })), &[]).await;
    assert_eq!((status, pending_mfa["FlinksCode"].as_str()), (401, Some("UNAUTHORIZED")));
    let (status, wrong) = authorize(
        &app,
        &sandbox,
        json!({ "RequestId": request_id, "SecurityResponses": { prompt.clone(): ["Toronto"] } }),
    )
    .await;
    assert_eq!((status, wrong["FlinksCode"].as_str()), (401, Some("INVALID_SECURITY_RESPONSE")));
    let (status, right) =
        authorize(&app, &sandbox, json!({ "RequestId": request_id, "SecurityResponses": { prompt: ["montreal"] } }))
            .await;
    assert_eq!(status, 200, "{right}");
    assert_eq!(right["RequestId"], request_id.as_str());
    assert_eq!(app.deliver_due().await, 2);

    let cases = [
        (json!({ "Institution": "FlinksCapital", "Username": "Greatday", "Password": "Nope" }), 401, "INVALID_LOGIN"),
        (
            json!({ "Institution": "FlinksCapital", "Username": "test_service_unavailable", "Password": "x" }),
            401,
            "RETRY_LATER",
        ),
        (
            json!({ "Institution": "NoSuchBank", "Username": "Greatday", "Password": "Everyday" }),
            400,
            "INVALID_REQUEST",
        ),
        (json!({ "LoginId": "00000000-0000-4000-8000-000000000000", "MostRecentCached": true }), 401, "INVALID_LOGIN"),
        (json!({ "Username": "Greatday" }), 400, "INVALID_REQUEST"),
    ];
    for (body, expected_status, code) in cases {
        let (status, error) = authorize(&app, &sandbox, body.clone()).await;
        assert_eq!((status, error["FlinksCode"].as_str()), (expected_status, Some(code)), "{body}");
        assert_eq!(error["HttpStatusCode"], expected_status);
        assert!(error["Message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let unknown = "11111111-2222-4333-8444-555555555555";
    let (status, error) =
        flinks(&app, &sandbox, Method::POST, "GetAccountsDetail", Some(json!({ "RequestId": unknown })), &[]).await;
    assert_eq!((status, error["FlinksCode"].as_str()), (400, Some("SESSION_NONEXISTENT")));
    let (status, error) =
        flinks(&app, &sandbox, Method::GET, &format!("GetAccountsDetailAsync/{unknown}"), None, &[]).await;
    assert_eq!((status, error["FlinksCode"].as_str()), (400, Some("SESSION_NONEXISTENT")));
    let (status, error) = flinks(
        &app,
        &sandbox,
        Method::POST,
        "GetAccountsDetail",
        Some(json!({ "RequestId": request_id, "DaysOfTransactions": "Days7" })),
        &[],
    )
    .await;
    assert_eq!((status, error["FlinksCode"].as_str()), (400, Some("INVALID_REQUEST")));
    // A live instance has no sandbox.
    let (_, live) = app.admin(Method::POST, "/v1/instances", Some(json!({ "name": "real" }))).await;
    let live = Sandbox { customer_id: live["customer_id"].as_str().expect("id").to_string(), api_key: String::new() };
    let (status, _) = authorize(&app, &live, greatday("FlinksCapital")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_cached_authorize_gives_a_new_request_id_and_the_same_data() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let sandbox = sandbox(&app, &receiver, 0).await;
    let (_, first) = authorize(&app, &sandbox, greatday("CaisseBoreale")).await;
    app.deliver_due().await;
    let login_id = first["Login"]["Id"].as_str().expect("id").to_string();
    let (status, cached) = authorize(&app, &sandbox, json!({ "LoginId": login_id, "MostRecentCached": true })).await;
    assert_eq!(status, 200, "{cached}");
    assert_ne!(cached["RequestId"], first["RequestId"]);
    assert_eq!(cached["Login"]["Id"], login_id.as_str());
    assert_eq!(app.deliver_due().await, 0, "a cached authorize sends no callbacks");

    let mut accounts = Vec::new();
    for authorized in [&first, &cached] {
        let request_id = authorized["RequestId"].as_str().expect("id");
        let ask = json!({ "RequestId": request_id, "DaysOfTransactions": "Days365" });
        let (status, _) = flinks(&app, &sandbox, Method::POST, "GetAccountsDetail", Some(ask.clone()), &[]).await;
        assert_eq!(status, 202);
        let (status, body) = flinks(&app, &sandbox, Method::POST, "GetAccountsDetail", Some(ask), &[]).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["Accounts"][0]["TransitNumber"], Value::Null, "identity only when asked for");
        accounts.push(body["Accounts"].clone());
    }
    assert_eq!(accounts[0], accounts[1], "deterministic per LoginId");

    // After 30 minutes a RequestId is spent; a cached authorize gives a fresh one.
    app.clock.advance(chrono::Duration::minutes(31));
    let stale = json!({ "RequestId": first["RequestId"] });
    let (status, error) = flinks(&app, &sandbox, Method::POST, "GetAccountsSummary", Some(stale), &[]).await;
    assert_eq!((status, error["FlinksCode"].as_str()), (400, Some("SESSION_EXPIRED")));
    // A live refresh (MostRecentCached: false) sends the callbacks again, under the new RequestId.
    let (status, refreshed) =
        authorize(&app, &sandbox, json!({ "LoginId": login_id, "MostRecentCached": false })).await;
    assert_eq!(status, 200);
    assert_eq!(app.deliver_due().await, 2);
    let last: Value = serde_json::from_slice(&receiver.wait_for(4).await[3].body).expect("json");
    assert_eq!(last["RequestId"], refreshed["RequestId"]);
}

#[tokio::test]
async fn the_async_endpoint_answers_202_until_the_aggregation_is_done() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let sandbox = sandbox(&app, &receiver, 20).await;
    let (status, authorized) = authorize(&app, &sandbox, greatday("FlinksCapital")).await;
    assert_eq!(status, 200);
    let request_id = authorized["RequestId"].as_str().expect("id").to_string();
    let (status, _) =
        flinks(&app, &sandbox, Method::POST, "GetAccountsDetail", Some(json!({ "RequestId": request_id })), &[]).await;
    assert_eq!(status, 202);
    let path = format!("GetAccountsDetailAsync/{request_id}");
    assert_eq!(flinks(&app, &sandbox, Method::GET, &path, None, &[]).await.0, 202, "the manual clock has not moved");
    app.clock.advance(chrono::Duration::milliseconds(20));
    assert_eq!(flinks(&app, &sandbox, Method::GET, &path, None, &[]).await.0, 200);
    // The callbacks follow in the background, 20 ms apart on the sandbox's clock.
    let mut delivered = 0;
    for _ in 0..400 {
        delivered += app.deliver_due().await;
        if delivered == 2 {
            break;
        }
        app.clock.advance(chrono::Duration::milliseconds(20));
        // Lets the background connection run (it ingests on the store's own threads).
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(delivered, 2);
}

#[tokio::test]
async fn strict_auth_demands_flinks_keys_and_single_use_tokens() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let sandbox = sandbox(&app, &receiver, 0).await;
    let (status, _) =
        app.admin(Method::PATCH, "/v1/instances/bank", Some(json!({ "sandbox": { "strict_auth": true } }))).await;
    assert_eq!(status, 200);

    let (status, error) = flinks(&app, &sandbox, Method::POST, "GenerateAuthorizeToken", None, &[]).await;
    assert_eq!((status, error["FlinksCode"].as_str()), (401, Some("UNAUTHORIZED")));
    let (status, token) =
        flinks(&app, &sandbox, Method::POST, "GenerateAuthorizeToken", None, &[("flinks-auth-key", &sandbox.api_key)])
            .await;
    assert_eq!(status, 200);
    let token = token["Token"].as_str().expect("token").to_string();
    let (status, _) = authorize(&app, &sandbox, greatday("FlinksCapital")).await;
    assert_eq!(status, 401, "no token");
    let (status, authorized) = flinks(
        &app,
        &sandbox,
        Method::POST,
        "Authorize",
        Some(greatday("FlinksCapital")),
        &[("flinks-auth-key", &token)],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = flinks(
        &app,
        &sandbox,
        Method::POST,
        "Authorize",
        Some(greatday("FlinksCapital")),
        &[("flinks-auth-key", &token)],
    )
    .await;
    assert_eq!(status, 401, "a token is single-use");
    let ask = json!({ "RequestId": authorized["RequestId"] });
    let (status, _) = flinks(&app, &sandbox, Method::POST, "GetAccountsDetail", Some(ask.clone()), &[]).await;
    assert_eq!(status, 401, "data endpoints need x-api-key");
    let (status, _) =
        flinks(&app, &sandbox, Method::POST, "GetAccountsDetail", Some(ask), &[("x-api-key", &sandbox.api_key)]).await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn the_connect_redirect_carries_login_institution_and_tag() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let sandbox = sandbox(&app, &receiver, 0).await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let url = app.url(&format!(
        "/sandbox/{}/connect?institution=FlinksCapital&username=Greatday&password=Everyday&tag=applicant%3D7&demo=true&redirectUrl={}",
        sandbox.customer_id, "https%3A%2F%2Fapp.example.com%2Fdone%3Fstep%3D2"
    ));
    let response = no_redirects.get(&url).send().await.expect("connect");
    assert_eq!(response.status().as_u16(), 303);
    let location = url::Url::parse(response.headers()["location"].to_str().expect("location")).expect("url");
    assert_eq!(location.host_str(), Some("app.example.com"));
    let query: std::collections::HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["step"], "2");
    assert_eq!(query["institution"], "FlinksCapital");
    assert_eq!(query["tag"], "applicant=7");
    assert_eq!(query["demo"], "true");
    let (status, login) =
        app.admin(Method::GET, &format!("/v1/instances/bank/logins/{}", query["loginId"]), None).await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["callbacks"].as_array().expect("callbacks").len(), 2);

    let bad = app.url(&format!("/sandbox/{}/connect?institution=FlinksCapital&username=Greatday&password=x&redirectUrl=https%3A%2F%2Fa.example", sandbox.customer_id));
    let response = no_redirects.get(&bad).send().await.expect("connect");
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn triggers_fire_callbacks_and_finhook_trigger_says_where_they_went() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let _sandbox = sandbox(&app, &receiver, 0).await;
    let (status, fired) = app
        .admin(
            Method::POST,
            "/v1/instances/bank/sandbox/trigger",
            Some(json!({ "kind": "connect", "institution": "TundraWealth", "tag": "t-9" })),
        )
        .await;
    assert_eq!(status, 202, "{fired}");
    let types: Vec<&str> =
        fired["messages"].as_array().expect("m").iter().map(|m| m["response_type"].as_str().expect("t")).collect();
    assert_eq!(types, ["KYC", "GetAccountsDetail", "Investments"]);
    assert_eq!(fired["messages"][0]["endpoints"][0]["url"], receiver.url("/flinks"));
    let (status, _) = app
        .admin(
            Method::POST,
            "/v1/instances/bank/sandbox/trigger",
            Some(json!({ "kind": "investments", "institution": "FlinksCapital" })),
        )
        .await;
    assert_eq!(status, 422);
    let (status, again) = app
        .admin(
            Method::POST,
            "/v1/instances/bank/sandbox/trigger",
            Some(json!({ "kind": "kyc", "login_id": fired["login_id"] })),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(again["login_id"], fired["login_id"]);
    assert_ne!(again["request_id"], fired["request_id"]);
    app.admin(Method::POST, "/v1/instances", Some(json!({ "name": "real" }))).await;
    let (status, _) =
        app.admin(Method::POST, "/v1/instances/real/sandbox/trigger", Some(json!({ "kind": "kyc" }))).await;
    assert_eq!(status, 409);

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .args(["trigger", "accounts", "--instance", "bank", "--tag", "cli", "--server", &app.url("")])
        .env("FINHOOK_ADMIN_KEY", ADMIN_KEY)
        .output()
        .await
        .expect("run finhook trigger");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Tag cli"), "{stdout}");
    assert!(stdout.contains("sent GetAccountsDetail") && stdout.contains(&receiver.url("/flinks")), "{stdout}");
    let failed = tokio::process::Command::new(env!("CARGO_BIN_EXE_finhook"))
        .args(["trigger", "kyc", "--instance", "nobody", "--server", &app.url("")])
        .env("FINHOOK_ADMIN_KEY", ADMIN_KEY)
        .output()
        .await
        .expect("run finhook trigger");
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("instance not found"));
    assert_eq!(app.deliver_due().await, 5);
}
