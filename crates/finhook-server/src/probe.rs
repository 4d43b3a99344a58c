//! The conformance probe: grades a webhook receiver somebody else wrote. It sends real,
//! correctly signed sandbox callbacks and deliberate faults, over the delivery client (the
//! same TLS, target checks and no redirects), and reports each check: TLS, exactly 200,
//! rejecting bad, missing, stale, future and body-altered signatures, duplicates, callbacks
//! out of order, and a 5 MB body. `finhook probe`, `POST …/endpoints/{id}/probe` and the
//! endpoint page all run [`probe`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use finhook_core::flinks::ResponseType;
use finhook_core::ids::MessageId;
use finhook_core::secret::EndpointSecret;
use finhook_core::signing::{self, FLINKS_HEADER, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use serde::Serialize;

use crate::delivery::certificate::CertificateWatch;
use crate::delivery::client::{DeliveryClient, SendOutcome};
use crate::test_callback::{self, TestCallbackError};

/// How far from now a timestamp must be refused: Standard Webhooks' tolerance is 5 minutes.
const SKEW: i64 = 600;
/// The large body's size: a year of a busy account's transactions.
pub const LARGE_BODY_BYTES: usize = 5 * 1024 * 1024;

/// What to probe.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub secret: EndpointSecret,
    /// A URL with `{login_id}` where the receiver shows what it stored of a login; each
    /// stored callback's `webhook-id` must appear in its body. Without it, storing a
    /// duplicate once is not checked, only that it is answered.
    pub check_url: Option<String>,
    /// The client certificate to present (an endpoint with mutual TLS).
    pub identity: Option<std::sync::Arc<crate::store::ClientIdentity>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not applicable here (TLS on a plain-HTTP loopback receiver).
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One graded check.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// A stable name: `tls`, `answers_200`, `rejects_bad_signature`,
    /// `rejects_missing_signature`, `rejects_stale_timestamp`, `rejects_future_timestamp`,
    /// `rejects_altered_body`, `deduplicates`, `out_of_order`, `large_body`.
    pub id: &'static str,
    /// What the check asks of the receiver, in a sentence.
    pub expects: &'static str,
    pub outcome: Outcome,
    /// What happened.
    pub detail: String,
}

/// The report card.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub url: String,
    /// Every check passed (or was skipped).
    pub passed: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Callback(#[from] TestCallbackError),
}

/// One request the probe sends: a callback's bytes and the headers it goes with.
struct Shot {
    body: bytes::Bytes,
    headers: Vec<(&'static str, String)>,
}

impl Shot {
    /// `body` signed as finhook signs a delivery (both schemes) with `secret`, at `at`.
    fn signed(body: Vec<u8>, secret: &EndpointSecret, at: i64) -> Self {
        let id = MessageId::generate().to_string();
        Self::signed_as(body, secret, &id, at)
    }

    fn signed_as(body: Vec<u8>, secret: &EndpointSecret, webhook_id: &str, at: i64) -> Self {
        let headers = vec![
            (FLINKS_HEADER, signing::flinks_authenticity_key(secret, &body)),
            (WEBHOOK_ID, webhook_id.to_string()),
            (WEBHOOK_TIMESTAMP, at.to_string()),
            (WEBHOOK_SIGNATURE, signing::standard_signature(secret, webhook_id, at, &body)),
        ];
        Self { body: body.into(), headers }
    }

    fn without_signatures(mut self) -> Self {
        self.headers.retain(|(name, _)| *name != FLINKS_HEADER && *name != WEBHOOK_SIGNATURE);
        self
    }

    fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v.as_str())
    }
}

/// What the receiver did with one shot.
enum Answer {
    Status(u16, Duration),
    Failed(String),
}

impl Answer {
    fn accepted(&self) -> bool {
        matches!(self, Answer::Status(status, _) if (200..300).contains(status))
    }

    fn refused(&self) -> bool {
        matches!(self, Answer::Status(status, _) if (400..500).contains(status))
    }

    fn describe(&self) -> String {
        match self {
            Answer::Status(status, latency) => format!("answered {status} in {} ms", latency.as_millis()),
            Answer::Failed(detail) => format!("no answer: {detail}"),
        }
    }
}

async fn shoot(client: &DeliveryClient, target: &Target, shot: &Shot) -> Answer {
    let headers: Vec<(&str, &str)> = shot.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    match client.post_with(&target.url, shot.body.clone(), &headers, target.identity.as_deref()).await {
        SendOutcome::Answered { status, latency, .. } => Answer::Status(status, latency),
        SendOutcome::Failed { class, detail, .. } => Answer::Failed(format!("{class}: {detail}")),
    }
}

/// Grades a check that the receiver must refuse with a 4xx.
fn must_refuse(id: &'static str, expects: &'static str, answer: &Answer) -> Check {
    let outcome = if answer.refused() { Outcome::Pass } else { Outcome::Fail };
    let mut detail = answer.describe();
    if answer.accepted() {
        detail.push_str(": it accepted what it must refuse");
    }
    Check { id, expects, outcome, detail }
}

fn graded(id: &'static str, expects: &'static str, pass: bool, detail: String) -> Check {
    Check { id, expects, outcome: if pass { Outcome::Pass } else { Outcome::Fail }, detail }
}

/// Runs every check against `target`, with `now` as the signatures' time. Each check sends
/// its own callbacks (their LoginIds are fresh UUIDs, their Tag `finhook-test`).
pub async fn probe(
    client: &DeliveryClient,
    watch: &CertificateWatch,
    target: &Target,
    now: DateTime<Utc>,
) -> Result<Report, ProbeError> {
    let (url, secret, at) = (target.url.as_str(), &target.secret, now.timestamp());
    let login = || uuid::Uuid::new_v4().to_string();
    // Every request is made first, then all checks run at once: a receiver that never
    // answers costs about two of the client's timeouts, not one per request.
    let kyc = test_callback::body_for(ResponseType::Kyc, &login(), now)?;
    let valid = Shot::signed(kyc.clone(), secret, at);
    let stranger = Shot::signed(kyc.clone(), &EndpointSecret::generate(), at);
    let unsigned = Shot::signed(kyc.clone(), secret, at).without_signatures();
    let stale = Shot::signed(kyc.clone(), secret, at - SKEW);
    let future = Shot::signed(kyc.clone(), secret, at + SKEW);
    let mut altered = Shot::signed(kyc, secret, at);
    let text = String::from_utf8_lossy(&altered.body).replacen("\"finhook-test\"", "\"finhook-tesT\"", 1);
    altered.body = text.into_bytes().into();
    let third = login();
    let detail_first = Shot::signed(test_callback::body_for(ResponseType::GetAccountsDetail, &third, now)?, secret, at);
    let kyc_after = Shot::signed(test_callback::body_for(ResponseType::Kyc, &third, now)?, secret, at);
    // In order (its KYC first), so that only the size is being graded.
    let fourth = login();
    let kyc_first = Shot::signed(test_callback::body_for(ResponseType::Kyc, &fourth, now)?, secret, at);
    let large = Shot::signed(test_callback::large_accounts_detail(&fourth, now, LARGE_BODY_BYTES)?, secret, at);
    let dedupe_login = login();

    let (tls, answer, bad, missing, old, ahead, changed, dedupe, (gad_first, then_kyc), (kyc_before, big)) = tokio::join!(
        watch.inspect(url, target.identity.as_deref()),
        shoot(client, target, &valid),
        shoot(client, target, &stranger),
        shoot(client, target, &unsigned),
        shoot(client, target, &stale),
        shoot(client, target, &future),
        shoot(client, target, &altered),
        deduplicates(client, target, &dedupe_login, now),
        async { (shoot(client, target, &detail_first).await, shoot(client, target, &kyc_after).await) },
        async { (shoot(client, target, &kyc_first).await, shoot(client, target, &large).await) },
    );

    let mut checks = Vec::new();
    checks.push(match tls {
        None => Check {
            id: "tls",
            expects: "a valid certificate for its host, not expiring within 14 days",
            outcome: Outcome::Skipped,
            detail: "plain HTTP (allowed only to loopback): a real endpoint needs https".into(),
        },
        Some(report) => {
            let soon = report.is_valid() && report.expires_soon(now);
            let detail = match (&report.problem, report.expires_at) {
                (Some(problem), _) => problem.clone(),
                (None, Some(end)) if soon => {
                    format!("valid, but it expires {} (within 14 days)", end.format("%Y-%m-%d"))
                }
                (None, Some(end)) => format!("valid until {}", end.format("%Y-%m-%d")),
                (None, None) => "valid".into(),
            };
            graded(
                "tls",
                "a valid certificate for its host, not expiring within 14 days",
                report.is_valid() && !soon,
                detail,
            )
        }
    });
    let exactly = matches!(answer, Answer::Status(200, _));
    let mut detail = answer.describe();
    if answer.accepted() && !exactly {
        detail.push_str(": Flinks counts only 200 as delivered, so this would be retried");
    }
    checks.push(graded(
        "answers_200",
        "a correctly signed callback is answered 200, within the timeout",
        exactly,
        detail,
    ));
    checks.push(must_refuse("rejects_bad_signature", "a callback signed with another secret is refused (4xx)", &bad));
    checks.push(must_refuse(
        "rejects_missing_signature",
        "a callback without any signature is refused (4xx)",
        &missing,
    ));
    checks.push(must_refuse(
        "rejects_stale_timestamp",
        "a correctly signed callback whose webhook-timestamp is 10 minutes old is refused (4xx)",
        &old,
    ));
    checks.push(must_refuse(
        "rejects_future_timestamp",
        "a correctly signed callback whose webhook-timestamp is 10 minutes ahead is refused (4xx)",
        &ahead,
    ));
    checks.push(must_refuse("rejects_altered_body", "a body changed after it was signed is refused (4xx)", &changed));
    checks.push(dedupe?);
    checks.push(graded(
        "out_of_order",
        "a login's GetAccountsDetail before its KYC is accepted (2xx), then the KYC too",
        gad_first.accepted() && then_kyc.accepted(),
        format!("GetAccountsDetail first: {}; KYC after: {}", gad_first.describe(), then_kyc.describe()),
    ));
    checks.push(graded(
        "large_body",
        "a 5 MB GetAccountsDetail (after its KYC) is accepted (2xx) within the timeout",
        big.accepted(),
        format!("{} bytes: {} (its KYC first: {})", large.body.len(), big.describe(), kyc_before.describe()),
    ));

    let passed = checks.iter().all(|c| c.outcome != Outcome::Fail);
    Ok(Report { url: target.url.clone(), passed, checks })
}

/// The same message twice (one `webhook-id`, fresh signatures): both accepted, and, when
/// the receiver shows what it stored, stored once.
async fn deduplicates(
    client: &DeliveryClient,
    target: &Target,
    login_id: &str,
    now: DateTime<Utc>,
) -> Result<Check, ProbeError> {
    const EXPECTS: &str = "the same webhook-id twice is accepted (2xx) both times and stored once";
    let body = test_callback::body_for(ResponseType::Kyc, login_id, now)?;
    let id = MessageId::generate().to_string();
    let first = Shot::signed_as(body.clone(), &target.secret, &id, now.timestamp());
    let again = Shot::signed_as(body, &target.secret, first.header(WEBHOOK_ID), now.timestamp() + 1);
    let (one, two) = (shoot(client, target, &first).await, shoot(client, target, &again).await);
    let answered = format!("first {}; again {}", one.describe(), two.describe());
    if !(one.accepted() && two.accepted()) {
        return Ok(graded("deduplicates", EXPECTS, false, answered));
    }
    let Some(check_url) = &target.check_url else {
        return Ok(graded(
            "deduplicates",
            EXPECTS,
            true,
            format!("{answered}; stored once: not checked (no check URL)"),
        ));
    };
    let url = check_url.replace("{login_id}", login_id);
    Ok(match client.get(&url).await {
        Ok((200, page)) => {
            let times = String::from_utf8_lossy(&page).matches(id.as_str()).count();
            graded(
                "deduplicates",
                EXPECTS,
                times == 1,
                format!("{answered}; {url} shows the webhook-id {times} time(s)"),
            )
        }
        Ok((status, _)) => graded("deduplicates", EXPECTS, false, format!("{answered}; {url} answered {status}")),
        Err(error) => graded("deduplicates", EXPECTS, false, format!("{answered}; {url}: {error}")),
    })
}
