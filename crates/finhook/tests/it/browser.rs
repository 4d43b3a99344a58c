//! The dashboard in a real browser: Debian's Chromium driven over WebDriver.
//!
//! The WebDriver calls are a handful of JSON requests to chromedriver on 127.0.0.1, made
//! with reqwest here; the Rust WebDriver clients would bring a second TLS stack (aws-lc)
//! for a protocol this test only speaks over loopback HTTP.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    http: reqwest::Client,
    session: String,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("the dashboard test needs Debian's chromium and chromium-driver; scripts/test installs them");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            // Its own process group, so that Chromium goes down with it even if the test panics.
            .process_group(0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        // Wait (at most PATIENCE) for chromedriver to answer.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(response) = http.get(format!("{base}/status")).send().await {
                if response.status().is_success() {
                    break;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
        } } });
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("session")
            .json()
            .await
            .expect("json");
        let session =
            created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_string();
        let browser = Self { http, session: format!("{base}/session/{session}"), driver, _profile: profile };
        // Element lookups wait for the page a click or a form submission leads to.
        browser.call(reqwest::Method::POST, "/timeouts", Some(json!({ "implicit": 10_000 }))).await;
        browser
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.expect("webdriver").json().await.expect("json");
        assert!(answer["value"].get("error").is_none(), "webdriver {path}: {answer}");
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    async fn find(&self, css: &str) -> String {
        let found =
            self.call(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": css }))).await;
        found[ELEMENT].as_str().expect("element id").to_string()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({ "text": text }))).await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (at most [`PATIENCE`]) until the element at `css` says `needle`: after a click
    /// that leads to a page with the same elements, the old page may still be there, or
    /// gone from under a lookup (a stale element).
    async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            let found = self
                .http
                .post(format!("{}/element", self.session))
                .json(&json!({ "using": "css selector", "value": css }))
                .send()
                .await
                .expect("webdriver");
            let found: Value = found.json().await.expect("json");
            if let Some(element) = found["value"][ELEMENT].as_str() {
                let text: Value = self
                    .http
                    .get(format!("{}/element/{element}/text", self.session))
                    .send()
                    .await
                    .expect("webdriver")
                    .json()
                    .await
                    .expect("json");
                if let Some(text) = text["value"].as_str() {
                    if text.contains(needle) {
                        return text.to_string();
                    }
                    last = text.to_string();
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{css} never said {needle:?}; last: {last:?}");
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_string()
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or_default().to_string()
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(group) = self.driver.id() {
            // chromedriver and every Chromium process it started.
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status();
        }
    }
}

#[tokio::test]
async fn an_operator_signs_in_follows_a_callback_and_redelivers_it() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    let acme_key = app.create_instance("acme").await;
    app.create_instance("other").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/hook") })).await;
    let mut kyc: Value = serde_json::from_slice(&fixture("kyc.json")).expect("json");
    kyc["Tag"] = json!("<img src=x onerror=alert(1)>");
    // An HTTPS endpoint whose server cannot be reached: stored, its certificate flagged.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("addr").port();
    app.create_endpoint("acme", json!({ "url": format!("https://localhost:{closed}/hook"), "enabled": false })).await;
    let id = app.ingest("acme", serde_json::to_vec(&kyc).expect("bytes")).await;
    assert_eq!(app.deliver_due().await, 1);
    app.state.health.flush(app.state.store.as_ref()).await.expect("health counts");
    let head = app.state.store.ledger_heads().await.expect("heads").pop().expect("acme's head");

    let browser = Browser::start().await;
    browser.goto(&app.url("/dashboard")).await;
    assert!(
        browser.url().await.ends_with("/dashboard/login?next=%2Fdashboard"),
        "signed-out visitors are sent to sign in"
    );
    browser.type_into("#key", "fhk_not_a_key").await;
    browser.click("#sign-in").await;
    assert_eq!(browser.text("#login-error").await, "That key is not valid.");

    browser.type_into("#key", ADMIN_KEY).await;
    browser.click("#sign-in").await;
    assert_eq!(browser.text("#messages-total").await, "1");
    assert!(browser.url().await.ends_with("/dashboard"));
    assert_eq!(browser.text("#deliveries-pending").await, "1");
    // Failing endpoints first, the last hour and day, the chart, and who is in trouble.
    let failing = browser.text("#failing").await;
    assert!(failing.contains("acme") && failing.contains("2026-03-14T18:00:00Z"), "{failing}");
    let windows = browser.text(".cards").await;
    assert!(windows.contains("1 attempts, 0.0 % succeeded, 1 failed"), "{windows}");
    let overview = browser.source().await;
    assert!(overview.contains("<title>18:00: 1 attempts, 1 failed</title>"), "the chart's current hour");
    assert_eq!(overview.matches("<title>").count(), 1 + 24, "the page's own title and 24 bars");
    let instances = browser.text("#instances").await;
    assert!(instances.contains("acme") && instances.contains("other"), "{instances}");

    browser.click("#instances a[href='/dashboard/instances/acme']").await;
    let endpoints = browser.text("#endpoints").await;
    assert!(endpoints.contains("Signing") && endpoints.contains("hmac") && endpoints.contains("none"), "{endpoints}");
    assert!(endpoints.contains("not checked yet: could not check the certificate"), "{endpoints}");
    assert_eq!(browser.source().await.matches("class=\"certificate flagged\"").count(), 1, "only the unchecked one");
    // The first endpoint's one attempt failed (500); the second is disabled by its owner.
    assert!(endpoints.contains("failing: 1 attempt in a row since 2026-03-14T18:00:00Z (last: 500)"), "{endpoints}");
    assert!(endpoints.contains("disabled"), "{endpoints}");
    assert_eq!(browser.source().await.matches("class=\"state flagged\"").count(), 1, "only the failing one");
    // The last hour: the one attempt failed, and its delivery waits for the retry.
    assert!(endpoints.contains("0.0 % of 1 attempts succeeded, p99 ≤ "), "{endpoints}");
    assert!(endpoints.contains("; backlog 1"), "{endpoints}");
    let ledger = browser.text("#ledger").await;
    assert!(ledger.starts_with(&format!("Chain head at entry 1: {}.", head.hash)), "{ledger}");
    let messages = browser.text("#messages").await;
    assert!(messages.contains(&id) && messages.contains("pending") && messages.contains("KYC"), "{messages}");
    let source = browser.source().await;
    assert!(!source.contains("<img src=x"), "payload text is escaped, never markup");
    assert!(source.contains("&lt;img src=x onerror=alert(1)&gt;"));

    browser.click(&format!("a[href='/dashboard/instances/acme/messages/{id}']")).await;
    let attempts = browser.text(".attempts").await;
    assert!(attempts.contains("500") && attempts.contains("http") && attempts.contains("reply 500"), "{attempts}");
    browser.click("#redeliver").await;
    let asked = browser.text("#redeliver-what").await;
    assert!(
        asked.starts_with("A new delivery to every enabled endpoint that takes KYC"),
        "confirmation first: {asked}"
    );
    browser.click("#confirm-redeliver").await;
    assert_eq!(browser.text("#redelivered").await, "Redelivered: 1 new delivery, due now.");
    // The page comes back with a second delivery once the new round is stored.
    browser.find("main h3:nth-of-type(2)").await;
    assert_eq!(app.deliver_due().await, 1, "the redelivery from the dashboard is due at once");
    browser.goto(&app.url(&format!("/dashboard/instances/acme/messages/{id}"))).await;
    let page = browser.source().await;
    assert_eq!(page.matches("class=\"status delivered\"").count(), 1, "the new round was delivered");
    assert_eq!(page.matches("class=\"status cancelled\"").count(), 1, "the first round's pending retry was cancelled");
    assert_eq!(page.matches("superseded by a later round").count(), 1, "and it says why");
    assert_eq!(page.matches("redeliver to this endpoint").count(), 1, "to one endpoint: from its latest round only");
    browser.click(".redeliver-one").await;
    let asked = browser.text("#redeliver-what").await;
    assert!(asked.contains(&receiver.url("/hook")), "names the endpoint: {asked}");
    browser.click("#confirm-redeliver").await;
    assert_eq!(browser.text("#redelivered").await, "Redelivered: 1 new delivery, due now.");
    assert_eq!(app.deliver_due().await, 1);

    // Bulk recovery: a delivery that failed for good, re-sent from the instance page.
    let once = TestReceiver::start(&[Reply::Status(503)], Reply::Status(200)).await;
    app.create_endpoint(
        "acme",
        json!({ "url": once.url("/once"), "retry": { "max_attempts": 1 }, "event_types": ["Investments"] }),
    )
    .await;
    app.ingest("acme", fixture("investments.json")).await;
    assert_eq!(app.deliver_due().await, 2, "to the first endpoint (200) and to the new one (503, failed for good)");
    browser.goto(&app.url("/dashboard/instances/acme")).await;
    browser.click("#recover-button").await;
    let mut status = String::new();
    for _ in 0..50 {
        status = browser.text("#recovery-status").await;
        if status.starts_with("done") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        browser.goto(&browser.url().await).await;
    }
    assert!(status.starts_with("done re-sent 1 of 1 failed deliveries"), "{status}");
    assert_eq!(app.deliver_due().await, 1, "the re-sent delivery");
    assert_eq!(once.received().len(), 2);

    // The audit log says who did it, and through the dashboard.
    browser.click("#audit-link").await;
    let audit = browser.text("#audit").await;
    for line in [
        "admin (dashboard) recovery.start",
        "admin (dashboard) message.redeliver",
        "admin (dashboard) dashboard.sign_in",
    ] {
        assert!(audit.contains(line), "{line}: {audit}");
    }
    assert!(audit.contains("unknown (dashboard) dashboard.sign_in_refused"), "the wrong key, too: {audit}");

    // Search, and pages of 50: older messages are a click away.
    for _ in 0..50 {
        app.ingest("acme", fixture("get_accounts_detail.json")).await;
    }
    browser.goto(&app.url("/dashboard/instances/acme")).await;
    assert!(!browser.text("#messages").await.contains(&id), "the first message is not on the newest page");
    browser.click("#older").await;
    // Both pages have #messages: wait for the older page itself.
    for _ in 0..200 {
        if browser.url().await.contains("before=") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(browser.text("#messages").await.contains(&id), "it is on the older one");
    browser.goto(&app.url("/dashboard/instances/acme?response_type=Investments")).await;
    let investments = browser.text("#messages").await;
    assert!(investments.contains("Investments") && !investments.contains("GetAccountsDetail"), "{investments}");
    browser.goto(&app.url("/dashboard/instances/acme?request_id=no-such-request")).await;
    assert!(browser.text("#no-messages").await.starts_with("No message matches."));
    // A time range: everything here arrived at 18:00 on the test's clock.
    browser.goto(&app.url("/dashboard/instances/acme?until=2026-03-14T17:59:59Z")).await;
    assert!(browser.text("#no-messages").await.starts_with("No message matches."));
    browser.goto(&app.url("/dashboard/instances/acme?since=2026-03-14T18:00:00Z&until=2026-03-14T18:00:00Z")).await;
    assert!(!browser.find("#older").await.is_empty(), "a full page of the range, and more");
    browser.goto(&app.url("/dashboard/instances/acme?until=yesterday")).await;
    assert_eq!(browser.text("#error").await, "until must be an RFC 3339 time, e.g. 2026-11-29T14:00:00Z");

    // An instance key sees its own instance and nothing else.
    browser.click("header button").await;
    browser.type_into("#key", &acme_key).await;
    browser.click("#sign-in").await;
    browser.find("#endpoints").await;
    assert!(browser.url().await.ends_with("/dashboard/instances/acme"));
    browser.goto(&app.url("/dashboard/instances/other")).await;
    assert!(browser.source().await.contains("instance not found"));

    // Signing in brings you back where you were going, and only ever into the dashboard.
    browser.goto(&app.url("/dashboard/instances/acme")).await;
    browser.click("header button").await;
    // Signed out once the sign-in page is there (before that, the next page would race it).
    browser.find("#sign-in").await;
    browser.goto(&app.url("/dashboard/audit")).await;
    browser.type_into("#key", ADMIN_KEY).await;
    browser.click("#sign-in").await;
    browser.find("#audit").await;
    assert!(browser.url().await.ends_with("/dashboard/audit"), "{}", browser.url().await);
    browser.click("header button").await;
    browser.find("#sign-in").await;
    browser.goto(&app.url("/dashboard/login?next=//evil.example/")).await;
    browser.type_into("#key", ADMIN_KEY).await;
    browser.click("#sign-in").await;
    browser.find("#messages-total").await;
    assert!(browser.url().await.ends_with("/dashboard"), "{}", browser.url().await);
    browser.quit().await;
}

#[tokio::test]
async fn an_operator_runs_an_endpoint_from_its_page() {
    let app = spawn_app().await;
    // Empty states say what to do next.
    let browser = Browser::start().await;
    browser.goto(&app.url("/dashboard/login")).await;
    browser.type_into("#key", ADMIN_KEY).await;
    browser.click("#sign-in").await;
    assert!(browser.text("#no-instances").await.starts_with("No instance yet. Create one"));
    app.create_instance("lonely").await;
    let nowhere = app.ingest("lonely", fixture("kyc.json")).await;
    browser.goto(&app.url("/dashboard/instances/lonely")).await;
    assert!(browser.text("#no-endpoints").await.starts_with("No endpoint yet: callbacks sent to this instance"));
    browser.goto(&app.url(&format!("/dashboard/instances/lonely/messages/{nowhere}"))).await;
    assert!(browser.text("#no-deliveries").await.starts_with("Sent to no endpoint: none that takes KYC"));
    // An endpoint added from the instance page: a bad URL is an error naming the field;
    // a good one shows its secret once, and callbacks from then on go to it.
    browser.goto(&app.url("/dashboard/instances/lonely")).await;
    browser.type_into("#new-endpoint input[name=url]", "http://hooks.example.com/").await;
    browser.click("#add-endpoint").await;
    assert!(browser.text("#error").await.starts_with("$.url "), "the field to fix is named");
    let lonely_receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    browser.goto(&app.url("/dashboard/instances/lonely")).await;
    browser.type_into("#new-endpoint input[name=url]", &lonely_receiver.url("/lonely")).await;
    browser.type_into("#new-endpoint input[name=event_types]", "KYC, GetAccountsDetail").await;
    browser.click("#add-endpoint").await;
    let created_secret = browser.text("#new-secret").await;
    assert!(created_secret.starts_with("whsec_"), "{created_secret}");
    let (_, listed) = app.admin(reqwest::Method::GET, "/v1/instances/lonely/endpoints", None).await;
    assert_eq!(listed["data"][0]["event_types"], json!(["KYC", "GetAccountsDetail"]), "{listed}");
    app.ingest("lonely", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1, "the new endpoint takes what comes after it");

    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let endpoint =
        app.create_endpoint("acme", json!({ "url": receiver.url("/hook"), "description": "Acme's ERP" })).await;
    let bystander = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_endpoint("acme", json!({ "url": bystander.url("/other") })).await;
    let ops =
        app.create_endpoint("acme", json!({ "url": receiver.url("/ops"), "event_types": ["endpoint.failing"] })).await;
    let id = endpoint["id"].as_str().expect("id").to_string();
    let first = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2, "to both endpoints that take callbacks");
    app.state.health.flush(app.state.store.as_ref()).await.expect("health counts");

    browser.goto(&app.url("/dashboard/instances/acme")).await;
    browser.click(&format!("a.endpoint-link[href='/dashboard/instances/acme/endpoints/{id}']")).await;

    // Its health over the last hour and day, and its newest deliveries with their last attempt.
    assert_eq!(browser.text("#endpoint-url").await, format!("{} · Acme's ERP", receiver.url("/hook")));
    assert_eq!(browser.text("#endpoint-state").await, "enabled");
    let hour = browser.text("#last-hour").await;
    assert!(hour.starts_with("1 attempts, 100.0 % succeeded; latency p50 ≤ "), "{hour}");
    assert!(browser.text("#last-day").await.starts_with("1 attempts, 100.0 % succeeded"));
    assert_eq!(browser.text("#last-attempt").await, "2026-03-14T18:00:00Z (200)");
    assert_eq!(
        (browser.text("#failing").await, browser.text("#backlog").await),
        ("no".into(), "0 waiting, none overdue".into())
    );
    let deliveries = browser.text("#deliveries").await;
    assert!(deliveries.contains(&first) && deliveries.contains("delivered"), "{deliveries}");
    assert!(deliveries.contains("#1 at 2026-03-14T18:00:00Z: 200 in "), "{deliveries}");

    // A test callback: to this endpoint alone, then its message page.
    browser.click("#send-test").await;
    browser.find("#redeliver").await;
    let test_message = browser.url().await.rsplit('/').next().unwrap_or_default().to_string();
    assert!(test_message.starts_with("msg_"), "{test_message}");
    assert_eq!(app.deliver_due().await, 1);
    let got = receiver.wait_for(2).await;
    let body: Value = serde_json::from_slice(&got[1].body).expect("json");
    assert_eq!(
        (body["Tag"].as_str(), got[1].header("webhook-id")),
        (Some("finhook-test"), Some(test_message.as_str()))
    );
    assert_eq!(bystander.received().len(), 1, "the other endpoint got only the real callback");

    // Disable: nothing is sent to it; enable: what waited goes out.
    browser.goto(&app.url(&format!("/dashboard/instances/acme/endpoints/{id}"))).await;
    browser.click("#disable").await;
    assert!(browser.wait_for_text("#notice", "Disabled").await.starts_with("Disabled"));
    assert_eq!(browser.text("#endpoint-state").await, "disabled");
    app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 1, "only the bystander, while this one is disabled");
    browser.click("#enable").await;
    assert!(browser.wait_for_text("#notice", "Enabled").await.starts_with("Enabled"));
    assert_eq!(browser.text("#endpoint-state").await, "enabled");

    // A new secret, shown once; the receiver verifies the next callback with it.
    browser.click("#rotate-secret").await;
    let secret = browser.text("#new-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (status, _) = app.admin(reqwest::Method::POST, &format!("/v1/instances/acme/endpoints/{id}/test"), None).await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED);
    assert_eq!(app.deliver_due().await, 1);
    let got = receiver.wait_for(3).await;
    let new = finhook_core::secret::EndpointSecret::parse(&secret).expect("a secret");
    let headers = finhook_core::signing::StandardHeaders {
        id: got[2].header("webhook-id"),
        timestamp: got[2].header("webhook-timestamp"),
        signature: got[2].header("webhook-signature"),
    };
    assert_eq!(finhook_core::signing::verify_standard(&[new], headers, &got[2].body, t0().timestamp(), 300), Ok(()));

    // The probe grades the receiver: this test receiver checks no signature, so it fails.
    browser.goto(&app.url(&format!("/dashboard/instances/acme/endpoints/{id}"))).await;
    browser.click("#probe").await;
    assert!(browser.text("#probe-verdict").await.starts_with("Failed"));
    let checks = browser.text("#probe-checks").await;
    assert!(checks.contains("rejects_bad_signature") && checks.contains("fail"), "{checks}");
    assert_eq!(browser.source().await.matches("<tr><td><code>").count(), 10, "ten checks");

    // An endpoint of events only has no callback to be tested with, and says so.
    let ops_id = ops["id"].as_str().expect("id");
    browser.goto(&app.url(&format!("/dashboard/instances/acme/endpoints/{ops_id}"))).await;
    assert!(browser.source().await.contains("id=\"send-test\" disabled"));
    assert!(browser.text("#no-deliveries").await.starts_with("Nothing sent to this endpoint yet."));
    // An endpoint that does not exist is an error in the page's layout, with a way back.
    browser.goto(&app.url("/dashboard/instances/acme/endpoints/ep_nope")).await;
    assert_eq!(browser.text("#error").await, "endpoint not found");

    browser.click("#audit-link").await;
    let audit = browser.text("#audit").await;
    for line in [
        "endpoint.create",
        "endpoint.test",
        "endpoint.disable",
        "endpoint.enable",
        "endpoint.rotate_secret",
        "endpoint.probe",
    ] {
        assert!(audit.contains(&format!("admin (dashboard) {line}")), "{line}: {audit}");
    }
    browser.quit().await;
}

/// An operator hands an integrator a portal link from the instance page; the integrator
/// opens it without any key, edits their endpoint and sends it a test callback, sees no
/// other instance and no links to manage; once the operator revokes it, the session ends.
#[tokio::test]
async fn an_integrator_serves_themselves_through_a_portal_link() {
    let app = spawn_app().await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_instance("other").await;
    let endpoint = app.create_endpoint("acme", json!({ "url": receiver.url("/old") })).await;
    let id = endpoint["id"].as_str().expect("id").to_string();

    let browser = Browser::start().await;
    browser.goto(&app.url("/dashboard/login")).await;
    browser.type_into("#key", ADMIN_KEY).await;
    browser.click("#sign-in").await;
    // The overview the sign-in leads to: its cookie is set before the next page is asked
    // for (going on at once raced the sign-in's own navigation, and lost under load).
    browser.find("#messages-total").await;
    browser.goto(&app.url("/dashboard/instances/acme")).await;
    browser.click("#create-portal-link").await;
    let link = browser.text("#new-portal-link").await;
    assert!(link.starts_with(&app.url("/portal/fhp_")), "{link}");

    // The integrator: the link alone opens acme's dashboard.
    browser.goto(&link).await;
    browser.click("#portal-continue").await;
    assert_eq!(browser.text("#portal-note").await, "You are using a portal link.");
    assert!(!browser.source().await.contains("portal-link-list"), "no links to manage");
    browser.goto(&app.url(&format!("/dashboard/instances/acme/endpoints/{id}"))).await;
    let url_field = browser.find("#edit-endpoint input[name=url]").await;
    browser.call(reqwest::Method::POST, &format!("/element/{url_field}/clear"), Some(json!({}))).await;
    browser.type_into("#edit-endpoint input[name=url]", &receiver.url("/new")).await;
    browser.type_into("#edit-endpoint input[name=description]", "Acme's new receiver").await;
    browser.click("#edit-endpoint select[name=ordering] option[value=login_id]").await;
    browser.click("#save-endpoint").await;
    browser.wait_for_text("#notice", "Saved").await;
    assert!(browser.text("#endpoint-url").await.contains("/new · Acme's new receiver"));
    assert!(browser.text("#ordering").await.starts_with("one LoginId's callbacks at a time"));
    let (_, saved) = app.admin(reqwest::Method::GET, &format!("/v1/instances/acme/endpoints/{id}"), None).await;
    assert_eq!(saved["ordering"], "login_id", "{saved}");
    browser.click("#send-test").await;
    browser.wait_for_text("h1", "msg_").await;
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(receiver.wait_for(1).await[0].path, "/new", "the edited URL");
    browser.goto(&app.url("/dashboard/instances/other")).await;
    assert!(browser.text("h1").await.starts_with("404"), "another instance is not there");
    // The catch-up feed: what a receiver that is down waits for, with the cursor to resume from.
    let down = TestReceiver::start(&[], Reply::Status(503)).await;
    app.create_endpoint("acme", json!({ "url": down.url("/down") })).await;
    let waiting = app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.deliver_due().await, 2, "delivered to one, refused by the other");
    app.clock.advance(chrono::Duration::seconds(6));
    browser.goto(&app.url("/dashboard/instances/acme")).await;
    browser.click("#feed-link").await;
    assert!(browser.text("#feed").await.contains(&waiting), "the waiting callback is in the feed");
    assert_eq!(browser.text("#feed-cursor code").await, waiting, "the cursor to resume from");

    // Revoked by the operator: the next page ends the session.
    let (_, links) = app.admin(reqwest::Method::GET, "/v1/instances/acme/portal-links", None).await;
    let link_id = links["data"][0]["id"].as_str().expect("link id").to_string();
    let (status, _) =
        app.admin(reqwest::Method::DELETE, &format!("/v1/instances/acme/portal-links/{link_id}"), None).await;
    assert_eq!(status, reqwest::StatusCode::OK);
    browser.goto(&app.url("/dashboard/instances/acme")).await;
    assert!(browser.text("main").await.contains("expired or was revoked"), "{}", browser.source().await);
    let (_, audit) = app.admin(reqwest::Method::GET, "/v1/audit?instance=acme", None).await;
    assert!(audit.to_string().contains(&format!("instance:acme (portal {link_id})")), "{audit}");

    // A read-only link shows everything and changes nothing.
    let (_, read_only) =
        app.admin(reqwest::Method::POST, "/v1/instances/acme/portal-link", Some(json!({ "read_only": true }))).await;
    browser.goto(&app.url(read_only["path"].as_str().expect("path"))).await;
    browser.click("#portal-continue").await;
    assert_eq!(browser.text("#portal-note").await, "You are using a read-only portal link.");
    browser.goto(&app.url(&format!("/dashboard/instances/acme/endpoints/{id}"))).await;
    browser.click("#send-test").await;
    browser.wait_for_text("h1", "403").await;
    assert!(browser.text("main").await.contains("read-only"));
    assert_eq!(app.deliver_due().await, 0, "nothing was sent");
    browser.quit().await;
}
