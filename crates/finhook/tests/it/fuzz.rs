//! Fuzzing on stable Rust: proptest mutates the corpus checked in under `fuzz/corpus/`
//! (bit flips, JSON tokens spliced in, cuts, repeats) and feeds the three places that take
//! bytes from outside: the callback parser, signature verification and the ingest handler
//! over HTTP. CI runs a fixed number of cases per target; `scripts/fuzz SECONDS` runs each
//! for that long (`FINHOOK_FUZZ_SECONDS`). A failing input is shrunk, written to
//! `fuzz/corpus/<target>/crash-<hash>` (kept as a regression once fixed), and fails the test.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use finhook_core::flinks::{parse_callback, validate_callback, ParseLimits, DEFAULT_MAX_DEPTH};
use finhook_core::secret::EndpointSecret;
use finhook_core::signing::{self, StandardHeaders};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use sha2::Digest;

use crate::helpers::*;

/// What the mutations splice in: JSON structure, escapes, numbers and bytes parsers trip on.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b":",
    b"\\",
    b"null",
    b"true",
    b"-0",
    b"1e999999",
    b"123456789012345678901234567890.5",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00\\ud800",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\r\n",
    b"\x1b[31m",
    b"\"ResponseType\":\"KYC\",",
    b"\"ResponseType\":\"Investments\",",
    b"\"ResponseType\":\"GetAccountsDetail\",",
    b"\"Login\":{\"Id\":\"x\"},",
    b"\"Login\":{\"Id\":\"x\",\"Id\":\"y\"},",
    b"\"Tag\":\"",
    b"\"Accounts\":[{\"Balance\":{\"Current\":",
    b"\"HttpStatusCode\":",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, token: usize },
    Cut { at: usize, len: usize },
    Repeat { at: usize, len: usize, times: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Cut { at, len }),
        (any::<usize>(), 1..32usize, 2..64usize).prop_map(|(at, len, times)| Mutation::Repeat { at, len, times }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let at = |at: usize| if bytes.is_empty() { 0 } else { at % (bytes.len() + 1) };
        match *mutation {
            Mutation::Flip { at: i, bit } if !bytes.is_empty() => {
                let i = i % bytes.len();
                bytes[i] ^= 1 << bit;
            }
            Mutation::Flip { .. } => {}
            Mutation::Insert { at: i, token } => {
                let i = at(i);
                bytes.splice(i..i, TOKENS[token].iter().copied());
            }
            Mutation::Cut { at: i, len } => {
                let i = at(i);
                let end = (i + len).min(bytes.len());
                bytes.drain(i..end);
            }
            Mutation::Repeat { at: i, len, times } => {
                let i = at(i);
                let end = (i + len).min(bytes.len());
                let piece = bytes[i..end].to_vec();
                for _ in 1..times {
                    bytes.splice(end..end, piece.iter().copied());
                }
            }
        }
    }
    bytes
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target)
}

/// Every file of a target's corpus (the callback corpus seeds the others too).
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let mut inputs = Vec::new();
    let mut dirs = vec![corpus_dir("callback")];
    if target != "callback" {
        dirs.push(corpus_dir(target));
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.filter_map(|entry| entry.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            inputs.push(std::fs::read(&path).expect("read corpus file"));
        }
    }
    assert!(!inputs.is_empty(), "the corpus of {target} is empty");
    inputs
}

fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(seeds), prop::collection::vec(mutation(), 0..6))
        .prop_map(|(seed, mutations)| apply(seed, &mutations))
}

/// Runs `check` on mutated inputs: `cases` of them, or batches until `FINHOOK_FUZZ_SECONDS`
/// have passed. Every input of the corpus itself is checked first. Prints how many ran
/// (what `scripts/fuzz` reports).
#[allow(clippy::print_stderr)]
fn fuzz(target: &str, cases: u32, check: impl Fn(&[u8]) -> Result<(), TestCaseError>) {
    let seeds = corpus(target);
    for seed in &seeds {
        if let Err(error) = check(seed) {
            panic!("{target}: a corpus input fails: {error}");
        }
    }
    let seconds: u64 = std::env::var("FINHOOK_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut batch = 0u64;
    let mut ran = 0u64;
    loop {
        // A fixed seed per batch: a CI failure reproduces, and long runs still cover new ground.
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&batch.to_le_bytes());
        let config = Config { cases, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
        match runner.run(&inputs(seeds.clone()), |input| check(&input)) {
            Ok(()) => {}
            Err(TestError::Fail(reason, input)) => {
                let hash = sha2::Sha256::digest(&input);
                let name = format!("crash-{}", hash.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>());
                let dir = corpus_dir(target);
                std::fs::create_dir_all(&dir).expect("corpus dir");
                std::fs::write(dir.join(&name), &input).expect("write crash");
                panic!("{target}: {reason}; the shrunk input is fuzz/corpus/{target}/{name}");
            }
            Err(TestError::Abort(reason)) => panic!("{target}: aborted: {reason}"),
        }
        ran += u64::from(cases);
        batch += 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!("fuzz {target}: {ran} mutated inputs and {} corpus inputs, no failure", seeds.len());
}

#[test]
fn fuzz_the_callback_parser() {
    let limits = ParseLimits { max_depth: DEFAULT_MAX_DEPTH };
    fuzz("callback", 2_000, |body| {
        // Never a panic; and whatever it accepts is a JSON object with a known
        // ResponseType, parsed the same way twice.
        let parsed = parse_callback(body, limits);
        if let Ok(callback) = &parsed {
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| TestCaseError::fail(format!("accepted but not JSON: {e}")))?;
            prop_assert_eq!(value["ResponseType"].as_str(), Some(callback.response_type().as_str()));
            // Investments callbacks may come without a Login; the others never do.
            let login = callback.keys().login_id;
            let optional = callback.response_type() == finhook_core::flinks::ResponseType::Investments;
            prop_assert!(login.as_ref().map_or(optional, |id| !id.trim().is_empty()), "LoginId {:?}", login);
        }
        prop_assert_eq!(format!("{:?}", parse_callback(body, limits)), format!("{parsed:?}"));
        // Ingest's validation gives the same answer and the same error as the parser.
        let validated = validate_callback(body, limits);
        prop_assert_eq!(format!("{validated:?}"), format!("{:?}", parsed.map(|callback| callback.keys())));
        Ok(())
    });
}

#[test]
fn fuzz_signature_verification() {
    let secret = EndpointSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
    let other = EndpointSecret::generate();
    let now = 1_773_511_200;
    fuzz("signature", 1_000, |body| {
        let signed = signing::sign(std::slice::from_ref(&secret), "msg_fuzz", now, body)
            .map_err(|e| TestCaseError::fail(format!("could not sign: {e}")))?;
        let standard = StandardHeaders {
            id: Some("msg_fuzz"),
            timestamp: Some("1773511200"),
            signature: Some(&signed.webhook_signature),
        };
        prop_assert!(signing::verify_flinks(
            std::slice::from_ref(&secret),
            Some(&signed.flinks_authenticity_key),
            body
        )
        .is_ok());
        prop_assert!(signing::verify_standard(std::slice::from_ref(&secret), standard, body, now, 300).is_ok());
        prop_assert!(
            signing::verify_flinks(std::slice::from_ref(&other), Some(&signed.flinks_authenticity_key), body).is_err()
        );
        // The body read as header values: garbage headers never verify, and never panic.
        let text = String::from_utf8_lossy(body);
        let garbage = StandardHeaders { id: Some(&text), timestamp: Some(&text), signature: Some(&text) };
        prop_assert!(signing::verify_standard(std::slice::from_ref(&secret), garbage, body, now, 300).is_err());
        prop_assert!(signing::verify_flinks(std::slice::from_ref(&secret), Some(&text), body).is_err());
        // One byte more or less and neither signature holds.
        let mut changed = body.to_vec();
        changed.push(b' ');
        prop_assert!(signing::verify_flinks(
            std::slice::from_ref(&secret),
            Some(&signed.flinks_authenticity_key),
            &changed
        )
        .is_err());
        prop_assert!(signing::verify_standard(std::slice::from_ref(&secret), standard, &changed, now, 300).is_err());
        Ok(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_the_ingest_handler() {
    // No rate limit: the manual clock never refills the bucket, and long runs send many.
    let options = Options { max_body_bytes: 64 * 1024, ingest_rate: Some((0, 0)), ..Options::default() };
    let app = spawn_app_with(options).await;
    app.create_instance("acme").await;
    let url = app.url("/v1/instances/acme/callbacks");
    let health = app.url("/healthz");
    let http = app.http.clone();
    let runtime = tokio::runtime::Handle::current();
    let stored = tokio::task::spawn_blocking(move || {
        let stored = std::sync::atomic::AtomicU64::new(0);
        fuzz("ingest", 300, |body| {
            runtime.block_on(async {
                let response = http
                    .post(&url)
                    .bearer_auth(ADMIN_KEY)
                    .header("content-type", "application/json")
                    .body(body.to_vec())
                    .send()
                    .await
                    .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                prop_assert!(matches!(status, 202 | 400 | 413 | 422), "status {} for this body: {}", status, text);
                if status == 202 {
                    stored.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                } else {
                    prop_assert!(text.contains("urn:finhook:problem:"), "a problem: {}", text);
                }
                let healthy = http.get(&health).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                prop_assert_eq!(healthy, 200);
                Ok(())
            })
        });
        stored.into_inner()
    })
    .await
    .expect("fuzz task");
    // Nothing refused was stored: the instance holds exactly the accepted callbacks.
    let mut listed = 0;
    let mut cursor = String::new();
    loop {
        let page = app.messages("acme", &format!("?limit=250{cursor}")).await;
        listed += page["data"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(listed as u64, stored, "exactly the accepted callbacks are stored");
    assert!(stored > 0, "some mutated inputs are still valid callbacks");
}
