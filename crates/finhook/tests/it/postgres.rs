//! The shared store: the same API and worker on PostgreSQL, several nodes on one database,
//! and a crashed node's claims expiring into another node's hands.

use std::collections::HashSet;

use finhook_core::ids::EndpointId;
use finhook_server::clock::{Clock, ManualClock};
use reqwest::Method;
use serde_json::{json, Value};

use crate::gate::DbGate;
use crate::helpers::*;

async fn pg_app(database: &str, clock: &ManualClock) -> TestApp {
    spawn_app_with(Options { database: Some(database.to_string()), clock: Some(clock.clone()), ..Options::default() })
        .await
}

/// Two nodes on one fresh database and manual clock, with instance `acme` and one endpoint.
struct TwoNodes {
    clock: ManualClock,
    one: TestApp,
    two: TestApp,
    receiver: TestReceiver,
    endpoint: EndpointId,
}

async fn two_nodes() -> TwoNodes {
    let database = postgres_database().await;
    let clock = ManualClock::starting_at(t0());
    let (one, two) = (pg_app(&database, &clock).await, pg_app(&database, &clock).await);
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    one.create_instance("acme").await;
    let endpoint = one.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let endpoint = EndpointId::parse(endpoint["id"].as_str().expect("id")).expect("endpoint id");
    TwoNodes { clock, one, two, receiver, endpoint }
}

#[tokio::test]
async fn the_api_and_the_schedule_work_on_the_shared_store() {
    let database = postgres_database().await;
    let clock = ManualClock::starting_at(t0());
    let app = pg_app(&database, &clock).await;
    let receiver = TestReceiver::start(&[Reply::Status(500)], Reply::Status(200)).await;
    app.create_instance("acme").await;
    let (status, _) = app.admin(Method::POST, "/v1/instances", Some(json!({ "name": "acme" }))).await;
    assert_eq!(status, 409);
    let endpoint =
        app.create_endpoint("acme", json!({ "url": receiver.url("/hook"), "retry": { "max_attempts": 3 } })).await;
    let endpoint_path = format!("/v1/instances/acme/endpoints/{}", endpoint["id"].as_str().expect("id"));
    let (status, patched) = app.admin(Method::PATCH, &endpoint_path, Some(json!({ "description": "bank" }))).await;
    assert_eq!((status.as_u16(), patched["description"].as_str()), (200, Some("bank")));

    let first = app.ingest_raw("acme", fixture("kyc.json"), Some("k-1")).await;
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().await.expect("json");
    let replay: Value = app.ingest_raw("acme", fixture("kyc.json"), Some("k-1")).await.json().await.expect("json");
    assert_eq!(first["message_id"], replay["message_id"]);
    assert_eq!(app.ingest_raw("acme", fixture("investments.json"), Some("k-1")).await.status().as_u16(), 409);
    assert_eq!(app.ingest_raw("acme", b"{\"ResponseType\":\"KYC\"}".to_vec(), None).await.status().as_u16(), 422);
    let detail = app.ingest("acme", fixture("get_accounts_detail.json")).await;
    app.ingest("acme", fixture("investments.json")).await;

    let page = app.messages("acme", "?limit=2").await;
    assert_eq!(page["data"].as_array().expect("data").len(), 2);
    let cursor = page["next_cursor"].as_str().expect("cursor").to_string();
    let rest = app.messages("acme", &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["data"][0]["id"], first["message_id"]);
    assert_eq!(app.messages("acme", "?response_type=GetAccountsDetail").await["data"][0]["id"], detail.as_str());

    assert_eq!(app.deliver_due().await, 3);
    assert_eq!(app.messages("acme", "?status=pending").await["data"].as_array().expect("d").len(), 1);
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(app.deliver_due().await, 1);
    assert_eq!(app.messages("acme", "?status=pending").await["data"].as_array().expect("d").len(), 0);
    // The receiver's one 500 went to whichever attempt reached it first.
    let mut retried = Vec::new();
    for listed in app.messages("acme", "").await["data"].as_array().expect("data") {
        let message = app.message("acme", listed["id"].as_str().expect("id")).await;
        let attempts = message["deliveries"][0]["attempts"].as_array().expect("attempts").clone();
        assert_eq!(message["deliveries"][0]["status"], "delivered");
        if attempts.len() == 2 {
            retried.push(attempts);
        }
    }
    assert_eq!(retried.len(), 1);
    assert_eq!(
        (retried[0][0]["status_code"].as_u64(), retried[0][0]["error_class"].as_str()),
        (Some(500), Some("http"))
    );
    assert_eq!(retried[0][1]["succeeded"], true);
    let gap = chrono::DateTime::parse_from_rfc3339(retried[0][1]["started_at"].as_str().expect("t")).expect("time")
        - chrono::DateTime::parse_from_rfc3339(retried[0][0]["started_at"].as_str().expect("t")).expect("time");
    assert_eq!(gap.num_minutes(), 30);

    let (status, login) =
        app.admin(Method::GET, "/v1/instances/acme/logins/c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e", None).await;
    assert_eq!(status, 200);
    assert_eq!(login["callbacks"].as_array().expect("callbacks").len(), 2);
    let (status, rotated) = app.admin(Method::POST, &format!("{endpoint_path}/rotate-secret"), None).await;
    assert_eq!(status, 200);
    let (status, redelivered) =
        app.admin(Method::POST, &format!("/v1/instances/acme/messages/{detail}/redeliver"), None).await;
    assert_eq!(status, 202, "{redelivered}");
    assert_eq!(app.deliver_due().await, 1);
    let last = receiver.received().pop().expect("request");
    assert_eq!(
        last.header("webhook-signature").expect("sig").split(' ').count(),
        2,
        "both secrets sign during the overlap"
    );
    let secret = finhook_core::secret::EndpointSecret::parse(rotated["secret"].as_str().expect("s")).expect("secret");
    assert_eq!(
        finhook_core::signing::verify_flinks(&[secret], last.header("flinks-authenticity-key"), &last.body),
        Ok(())
    );

    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("finhook_messages 3"), "{metrics}");
    clock.advance(chrono::Duration::days(91));
    let purged = finhook_server::retention::sweep(app.state.store.as_ref(), &clock, 90).await.expect("sweep");
    assert_eq!(purged, 3, "every message is finished and past retention");
    let (status, _) = app.admin(Method::DELETE, &endpoint_path, None).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn two_nodes_on_one_database_never_make_the_same_attempt_twice() {
    let database = postgres_database().await;
    let clock = ManualClock::starting_at(t0());
    let (one, two) = (pg_app(&database, &clock).await, pg_app(&database, &clock).await);
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    one.create_instance("acme").await;
    two.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    for n in 0..40 {
        let node = if n % 2 == 0 { &one } else { &two };
        node.ingest("acme", fixture("kyc.json")).await;
    }
    let (by_one, by_two) = tokio::join!(one.deliver_due(), two.deliver_due());
    assert_eq!(by_one + by_two, 40, "{by_one} + {by_two}");
    let received = receiver.wait_for(40).await;
    let ids: HashSet<String> = received.iter().filter_map(|r| r.header("webhook-id").map(str::to_string)).collect();
    assert_eq!((received.len(), ids.len()), (40, 40), "each message exactly once");
}

/// A node that crashes holding a lease (taken, never recorded) stops saying it is alive;
/// another node takes the delivery over once the crashed one has been silent for five
/// seconds, not when the lease (timeout + 30 s) runs out; while it still says it is
/// alive, nobody takes its lease.
#[tokio::test]
async fn a_crashed_nodes_claims_pass_to_another_node_within_five_seconds() {
    let database = postgres_database().await;
    let clock = ManualClock::starting_at(t0());
    let crashed = pg_app(&database, &clock).await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    crashed.create_instance("acme").await;
    let endpoint = crashed.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let endpoint = EndpointId::parse(endpoint["id"].as_str().expect("id")).expect("endpoint id");
    let id = crashed.ingest("acme", fixture("kyc.json")).await;
    // The node says it is alive, takes the delivery and dies before recording anything.
    let now = clock.now();
    crashed.state.store.heartbeat(now).await.expect("heartbeat");
    let lease = now + chrono::Duration::seconds(45);
    let taken = crashed.state.store.take_due(&endpoint, now, lease, 10, 0, false).await.expect("take");
    assert_eq!(taken.due.len(), 1);
    drop(crashed);

    let survivor = pg_app(&database, &clock).await;
    clock.advance(chrono::Duration::seconds(4));
    assert_eq!(survivor.deliver_due().await, 0, "4 s of silence: the lease is still held");
    clock.advance(chrono::Duration::seconds(2));
    assert_eq!(survivor.deliver_due().await, 1, "6 s of silence: taken over, 39 s before the lease ends");
    let message = survivor.message("acme", &id).await;
    assert_eq!(message["deliveries"][0]["status"], "delivered");
    assert_eq!(receiver.received().len(), 1);
}

/// While a node's worker runs, its ingests write their deliveries leased to it, and the
/// worker takes the handed-over deliveries without a claim of its own; the other nodes
/// leave them alone while it is alive, and take them once it has been silent.
#[tokio::test]
async fn ingest_leases_its_deliveries_to_its_own_worker() {
    let TwoNodes { clock, one, two, receiver, endpoint } = two_nodes().await;
    // What `Worker::run` does when it starts (these tests drive the worker step by step).
    one.state.store.lease_new_deliveries(chrono::Duration::seconds(60));
    one.state.store.heartbeat(clock.now()).await.expect("heartbeat");
    let first = one.ingest("acme", fixture("kyc.json")).await;
    let second = one.ingest("acme", fixture("get_accounts_detail.json")).await;
    let (lease, now) = (clock.now() + chrono::Duration::seconds(45), clock.now());
    let taken = two.state.store.take_due(&endpoint, now, lease, 10, 0, false).await.expect("take");
    assert!(taken.due.is_empty(), "leased to node one by its ingest: {:?}", taken.due);
    assert_eq!(one.deliver_due().await, 2, "node one delivers what it ingested, with no claim");
    assert_eq!(one.message("acme", &first).await["deliveries"][0]["status"], "delivered");

    // Node one ingests once more and goes silent: node two takes it after five seconds.
    let third = one.ingest("acme", fixture("investments.json")).await;
    clock.advance(chrono::Duration::seconds(4));
    assert_eq!(two.deliver_due().await, 0, "node one is still alive as far as node two knows");
    clock.advance(chrono::Duration::seconds(2));
    assert_eq!(two.deliver_due().await, 1, "taken over from the silent node");
    for id in [&second, &third] {
        assert_eq!(two.message("acme", id).await["deliveries"][0]["status"], "delivered", "{id}");
    }
    assert_eq!(receiver.received().len(), 3);
}

/// An ordered endpoint's deliveries go through a lane's scan, never straight from their
/// ingest: ingest leases them to no node (a lease would only be given back), so the first
/// node to look takes a LoginId's first callback.
#[tokio::test]
async fn an_ordered_endpoints_deliveries_are_not_leased_by_their_ingest() {
    let TwoNodes { clock, one, two, receiver, .. } = two_nodes().await;
    let ordered = one.create_endpoint("acme", json!({ "url": receiver.url("/ordered"), "ordering": "login_id" })).await;
    let ordered = EndpointId::parse(ordered["id"].as_str().expect("id")).expect("endpoint id");
    one.state.store.lease_new_deliveries(chrono::Duration::seconds(60));
    one.state.store.heartbeat(clock.now()).await.expect("heartbeat");
    let id = one.ingest("acme", fixture("kyc.json")).await;
    let (lease, now) = (clock.now() + chrono::Duration::seconds(45), clock.now());
    let taken = two.state.store.take_due(&ordered, now, lease, 10, 0, true).await.expect("take");
    let messages: Vec<&str> = taken.due.iter().map(|due| due.message_id.as_str()).collect();
    assert_eq!(messages, [id.as_str()], "the ordered endpoint's delivery was free for node two");
}

/// A live node keeps its leases however long its attempt takes: the others see it alive.
#[tokio::test]
async fn a_live_nodes_leases_are_left_alone() {
    let TwoNodes { clock, one, two, receiver, endpoint } = two_nodes().await;
    one.ingest("acme", fixture("kyc.json")).await;
    let now = clock.now();
    one.state.store.heartbeat(now).await.expect("heartbeat");
    let lease = now + chrono::Duration::seconds(45);
    assert_eq!(one.state.store.take_due(&endpoint, now, lease, 10, 0, false).await.expect("take").due.len(), 1);
    for _ in 0..10 {
        clock.advance(chrono::Duration::seconds(3));
        one.state.store.heartbeat(clock.now()).await.expect("heartbeat");
        assert_eq!(two.deliver_due().await, 0, "the lease of a live node is not taken");
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn sandbox_connections_work_on_the_shared_store() {
    let database = postgres_database().await;
    let clock = ManualClock::starting_at(t0());
    let app = pg_app(&database, &clock).await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    let (_, created) =
        app.admin(Method::POST, "/v1/instances", Some(json!({ "name": "bank", "mode": "sandbox" }))).await;
    app.admin(Method::PATCH, "/v1/instances/bank", Some(json!({ "sandbox": { "aggregation_delay_ms": 0 } }))).await;
    app.create_endpoint("bank", json!({ "url": receiver.url("/") })).await;
    let base = format!("/v3/{}/BankingServices", created["customer_id"].as_str().expect("cid"));
    let authorize = |body: Value| app.http.post(app.url(&format!("{base}/Authorize"))).json(&body).send();
    let challenge: Value =
        authorize(json!({ "Institution": "TundraWealth", "Username": "test_mfa", "Password": "Everyday" }))
            .await
            .expect("authorize")
            .json()
            .await
            .expect("json");
    assert_eq!(challenge["HttpStatusCode"], 203);
    let prompt = challenge["SecurityChallenges"][0]["Prompt"].as_str().expect("prompt").to_string();
    let answered =
        authorize(json!({ "RequestId": challenge["RequestId"], "SecurityResponses": { prompt: ["Montreal"] } }))
            .await
            .expect("answer");
    assert_eq!(answered.status().as_u16(), 200);
    assert_eq!(app.deliver_due().await, 3);
    let ask = json!({ "RequestId": challenge["RequestId"], "WithAccountIdentity": true });
    let first = app.http.post(app.url(&format!("{base}/GetAccountsDetail"))).json(&ask).send().await.expect("detail");
    assert_eq!(first.status().as_u16(), 202);
    let request_id = challenge["RequestId"].as_str().expect("id");
    let ready: Value = app
        .http
        .get(app.url(&format!("{base}/GetAccountsDetailAsync/{request_id}")))
        .send()
        .await
        .expect("async")
        .json()
        .await
        .expect("json");
    let webhook: Value = receiver
        .received()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).expect("json"))
        .find(|b| b["ResponseType"] == "GetAccountsDetail")
        .expect("webhook");
    assert_eq!(ready["Accounts"], webhook["Accounts"]);
}

#[tokio::test]
async fn the_shared_store_refuses_to_start_without_a_secrets_key() {
    let database = postgres_database().await;
    let settings = finhook_server::config::Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database,
        ..finhook_server::config::Settings::default()
    };
    let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(ManualClock::starting_at(t0()));
    let error = finhook_server::app::App::build(&settings, clock).await.expect_err("no key");
    assert!(error.to_string().contains("FINHOOK_SECRETS_KEY"), "{error}");
}

/// A node started while PostgreSQL cannot be reached waits for it (trying again and again,
/// with a warning each time) and comes up by itself once it answers, instead of exiting.
#[tokio::test]
async fn a_node_started_during_a_database_outage_waits_and_comes_up_with_the_database() {
    let database = postgres_database().await;
    let gate = DbGate::start(&database).await;
    gate.hang_up();
    let starting = tokio::spawn(spawn_app_with(Options { database: Some(gate.url(&database)), ..Options::default() }));
    gate.wait_refused(2).await;
    assert!(!starting.is_finished(), "the node gave up instead of waiting for the database");
    gate.open().await;
    let app = starting.await.expect("the node started once the database answered");
    app.create_instance("acme").await;
    app.ingest("acme", fixture("kyc.json")).await;
    assert_eq!(app.health().await.0, 200);
}

/// A database outage while a node runs: writes and `/healthz` answer `503` with
/// `Retry-After` within the pool's short wait (not a long hang, not a `500`); when the
/// database is back, the API and the worker resume by themselves and every acknowledged
/// callback is delivered.
#[tokio::test]
async fn a_database_outage_answers_503_at_once_and_the_node_resumes_by_itself() {
    let database = postgres_database().await;
    let gate = DbGate::start(&database).await;
    let app = spawn_app_with(Options { database: Some(gate.url(&database)), ..Options::default() }).await;
    let receiver = TestReceiver::start(&[], Reply::Status(200)).await;
    app.create_instance("acme").await;
    app.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    let before = app.ingest("acme", fixture("kyc.json")).await;

    gate.stop().await;
    let asked = std::time::Instant::now();
    let response = app.ingest_raw("acme", fixture("get_accounts_detail.json"), None).await;
    let waited = asked.elapsed();
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    assert_eq!(response.status().as_u16(), 503, "{:?}", response.text().await);
    // What an outage costs a caller is the pool's wait for a connection (2 s), with room
    // for a slow machine; before, it was a 10 s hang and then a 500.
    assert!(waited < std::time::Duration::from_secs(6), "answered after {waited:?}");
    let (status, _) = app.health().await;
    assert_eq!(status, 503);

    gate.open().await;
    let after = app.ingest("acme", fixture("investments.json")).await;
    assert_eq!(app.health().await.0, 200);
    assert_eq!(app.deliver_due().await, 2);
    let ids: HashSet<String> =
        receiver.received().iter().filter_map(|r| r.header("webhook-id").map(str::to_string)).collect();
    assert_eq!(ids, HashSet::from([before, after]), "every acknowledged callback, once");
}

/// A node that stops gracefully gives the deliveries it had queued, but not started, back
/// at once: no claim of its is left for the other nodes to wait out.
#[tokio::test]
async fn a_node_stopping_gracefully_releases_the_claims_it_did_not_start() {
    use sqlx::Connection;
    let database = postgres_database().await;
    let node = spawn_app_with(Options {
        database: Some(database.clone()),
        background_worker: true,
        per_endpoint: 1,
        timeout_seconds: 1,
        ..Options::default()
    })
    .await;
    let receiver = TestReceiver::start(&[], Reply::Hang).await;
    node.create_instance("acme").await;
    node.create_endpoint("acme", json!({ "url": receiver.url("/") })).await;
    for _ in 0..5 {
        node.ingest("acme", fixture("kyc.json")).await;
    }
    receiver.wait_for(1).await;
    let mut db = sqlx::PgConnection::connect(&database).await.expect("connect");
    let claimed = "SELECT count(*) FROM deliveries WHERE status = 'pending' AND claimed_until IS NOT NULL";
    // One attempt in flight and one queued behind it (one at a time, a lane of two).
    let mut held = 0;
    for _ in 0..200 {
        held = sqlx::query_scalar::<_, i64>(claimed).fetch_one(&mut db).await.expect("count");
        if held == 2 {
            break;
        }
        // Polls for the worker to queue the second hand-off; no timing is asserted.
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(held, 2, "the node holds the attempt in flight and one queued");

    node.stop().await; // the attempt in flight runs into its timeout and is recorded
    let held = sqlx::query_scalar::<_, i64>(claimed).fetch_one(&mut db).await.expect("count");
    assert_eq!(held, 0, "every claim given back");
    let pending = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM deliveries WHERE status = 'pending'")
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(pending, 5, "nothing lost");
}

/// Two nodes record attempts and seal the ledger at the same time: one chain, every
/// attempt in it once, no gap, whichever node sealed what (the sealer's advisory lock lets
/// one node at a time chain the queue).
#[tokio::test]
async fn two_nodes_recording_and_sealing_at_once_make_one_chain_without_gaps() {
    let TwoNodes { one, two, receiver, .. } = two_nodes().await;
    const CALLBACKS: usize = 120;
    for n in 0..CALLBACKS {
        let node = if n % 2 == 0 { &one } else { &two };
        node.ingest("acme", fixture("kyc.json")).await;
    }
    let seal_while_delivering = |app: &TestApp| {
        let store = app.state.store.clone();
        async move {
            for _ in 0..50 {
                finhook_server::ledger::seal_queued(store.as_ref()).await.expect("seal");
                tokio::task::yield_now().await;
            }
        }
    };
    let (by_one, by_two, (), ()) =
        tokio::join!(one.deliver_due(), two.deliver_due(), seal_while_delivering(&one), seal_while_delivering(&two));
    assert_eq!(by_one + by_two, CALLBACKS);
    receiver.wait_for(CALLBACKS).await;

    let exported = crate::on_postgres::ledger::export(&two, "acme", ADMIN_KEY, "").await;
    let summary = finhook_core::ledger::verify_lines(exported.lines.iter().map(String::as_str), None)
        .expect("one chain that verifies");
    assert_eq!((summary.first_seq, summary.last_seq), (1, CALLBACKS as u64));
    let attempts: HashSet<String> = exported.entries().into_iter().map(|entry| entry.facts.attempt_id).collect();
    assert_eq!(attempts.len(), CALLBACKS, "every attempt once");
    let from_one = crate::on_postgres::ledger::export(&one, "acme", ADMIN_KEY, "").await;
    assert_eq!(from_one.lines, exported.lines, "both nodes export the same chain");
}

/// While another session holds the chain (the ledger's advisory lock), the group commit
/// does not wait for it: its attempts are queued with their facts, and chained once the
/// chain is free, in one chain that verifies.
#[tokio::test]
async fn attempts_recorded_while_another_node_holds_the_chain_are_queued_then_chained() {
    use sqlx::Connection;
    // The second node stays up: a node that stops seals what is queued on its way out.
    let TwoNodes { one, two: _two, receiver, .. } = two_nodes().await;
    let mut holder = sqlx::PgConnection::connect(&one.database_url()).await.expect("another session");
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(0x6669_6e68_6f6f_6b4c_i64)
        .fetch_one(&mut holder)
        .await
        .expect("lock");
    assert!(locked);
    for _ in 0..5 {
        one.ingest("acme", fixture("kyc.json")).await;
    }
    assert_eq!(one.deliver_due().await, 5, "delivery does not wait for the chain");
    receiver.wait_for(5).await;
    assert_eq!(one.state.store.ledger_queued().await.expect("queued"), 5, "queued, not chained");
    assert_eq!(finhook_server::ledger::seal_queued(one.state.store.as_ref()).await.expect("seal"), 0, "held");

    let _: bool = sqlx::query_scalar("SELECT pg_advisory_unlock($1)")
        .bind(0x6669_6e68_6f6f_6b4c_i64)
        .fetch_one(&mut holder)
        .await
        .expect("unlock");
    let exported = crate::on_postgres::ledger::export(&one, "acme", ADMIN_KEY, "").await;
    let summary = finhook_core::ledger::verify_lines(&exported.lines, None).expect("verifies");
    assert_eq!((summary.first_seq, summary.last_seq), (1, 5));
    assert_eq!(one.state.store.ledger_queued().await.expect("queued"), 0);
}

/// Two nodes failing attempts to one endpoint at once count one run (every attempt, from
/// either node), and both running the events pass at once tell it once.
#[tokio::test]
async fn two_nodes_count_one_run_of_failures_and_tell_it_once() {
    let database = postgres_database().await;
    let clock = ManualClock::starting_at(t0());
    let (one, two) = (pg_app(&database, &clock).await, pg_app(&database, &clock).await);
    let down = TestReceiver::start(&[], Reply::Status(500)).await;
    let pager = TestReceiver::start(&[], Reply::Status(200)).await;
    one.create_instance("acme").await;
    let failing = one.create_endpoint("acme", json!({ "url": down.url("/") })).await;
    two.create_endpoint("acme", json!({ "url": pager.url("/"), "event_types": ["endpoint.failing"] })).await;
    const CALLBACKS: usize = 40;
    for n in 0..CALLBACKS {
        let node = if n % 2 == 0 { &one } else { &two };
        node.ingest("acme", fixture("kyc.json")).await;
    }
    let (by_one, by_two) = tokio::join!(one.deliver_due(), two.deliver_due());
    assert_eq!(by_one + by_two, CALLBACKS, "{by_one} + {by_two}");
    let path = format!("/v1/instances/acme/endpoints/{}", failing["id"].as_str().expect("id"));
    let (_, shown) = two.admin(Method::GET, &path, None).await;
    assert_eq!(shown["failing"]["failed_attempts_in_row"], CALLBACKS, "{shown}");

    let (a, b) = tokio::join!(one.state.events.pass(), two.state.events.pass());
    let (a, b) = (a.expect("pass"), b.expect("pass"));
    assert_eq!((a.reported_failing + b.reported_failing, a.published + b.published), (1, 1), "{a:?} {b:?}");
    let (by_one, by_two) = tokio::join!(one.deliver_due(), two.deliver_due());
    assert_eq!(by_one + by_two, 1);
    let told = pager.wait_for(1).await;
    let event: Value = serde_json::from_slice(&told[0].body).expect("json");
    assert_eq!(event["data"]["failed_attempts_in_row"], CALLBACKS);
    assert_eq!(pager.received().len(), 1, "told once");
}

/// Pooled connections the database dropped (a restart, a cut network) cost the next write
/// a retry on a fresh connection, not a 503: the batch failed at `BEGIN`, before anything
/// was sent.
#[tokio::test]
async fn connections_the_database_dropped_cost_a_retry_not_a_503() {
    let database = postgres_database().await;
    let gate = DbGate::start(&database).await;
    let app = spawn_app_with(Options { database: Some(gate.url(&database)), ..Options::default() }).await;
    app.create_instance("acme").await;
    app.ingest("acme", fixture("kyc.json")).await;
    for round in 0..5 {
        // Every connection through the gate is cut; the database is reachable again at once.
        gate.hang_up();
        gate.open().await;
        let response = app.ingest_raw("acme", fixture("get_accounts_detail.json"), None).await;
        assert_eq!(response.status().as_u16(), 202, "round {round}: {:?}", response.text().await);
    }
    assert_eq!(app.messages("acme", "").await["data"].as_array().map(Vec::len), Some(6));
}
