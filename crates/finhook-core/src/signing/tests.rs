//! Signing and verification against the published test vectors.

use sha2::Digest;

use super::*;

struct Vectors(serde_json::Value);

fn vectors() -> Vectors {
    let path = format!("{}/../../testdata/signatures.json", env!("CARGO_MANIFEST_DIR"));
    Vectors(serde_json::from_slice(&std::fs::read(path).expect("read vectors")).expect("json"))
}

impl Vectors {
    fn str(&self, pointer: &str) -> &str {
        self.0.pointer(pointer).and_then(|v| v.as_str()).expect(pointer)
    }
}

fn secret(value: &str) -> EndpointSecret {
    EndpointSecret::parse(value).expect("secret")
}

#[test]
fn standard_webhooks_matches_the_published_vector() {
    let v = vectors();
    let key = secret(v.str("/standard_webhooks/secret"));
    let timestamp = v.0.pointer("/standard_webhooks/webhook_timestamp").and_then(|t| t.as_i64()).expect("ts");
    let id = v.str("/standard_webhooks/webhook_id");
    let payload = v.str("/standard_webhooks/payload").as_bytes();
    let signature = standard_signature(&key, id, timestamp, payload);
    assert_eq!(signature, v.str("/standard_webhooks/webhook_signature"));

    let headers =
        StandardHeaders { id: Some(id), timestamp: Some(&timestamp.to_string()), signature: Some(&signature) };
    let check = |now| verify_standard(std::slice::from_ref(&key), headers, payload, now, DEFAULT_TOLERANCE_SECONDS);
    assert_eq!(check(timestamp + 300), Ok(()));
    assert_eq!(check(timestamp + 301), Err(VerifyError::TimestampTooOld));
    assert_eq!(check(timestamp - 301), Err(VerifyError::TimestampInFuture));
    let tampered = verify_standard(&[key], headers, b"{\"test\": 2432232315}", timestamp, 300);
    assert_eq!(tampered, Err(VerifyError::SignatureMismatch));
}

#[test]
fn flinks_authenticity_key_matches_the_fixture_vector() {
    let v = vectors();
    let body = std::fs::read(format!("{}/../../testdata/flinks/kyc.json", env!("CARGO_MANIFEST_DIR"))).expect("kyc");
    assert_eq!(hex(&sha2::Sha256::digest(&body)), v.str("/flinks_authenticity_key/body_sha256"));
    let key = secret(v.str("/flinks_authenticity_key/secret"));
    let value = flinks_authenticity_key(&key, &body);
    assert_eq!(value, v.str("/flinks_authenticity_key/value"));
    assert_eq!(verify_flinks(std::slice::from_ref(&key), Some(&value), &body), Ok(()));
    let mut altered = body.clone();
    altered[10] ^= 1;
    assert_eq!(verify_flinks(std::slice::from_ref(&key), Some(&value), &altered), Err(VerifyError::SignatureMismatch));
    assert_eq!(
        verify_flinks(std::slice::from_ref(&key), Some("%%"), &body),
        Err(VerifyError::InvalidHeader(FLINKS_HEADER))
    );
    assert_eq!(verify_flinks(&[key], None, &body), Err(VerifyError::MissingHeader(FLINKS_HEADER)));
}

#[test]
fn a_rotation_signs_with_every_secret_and_either_verifies() {
    let (new, old) = (EndpointSecret::generate(), EndpointSecret::generate());
    let body = br#"{"ResponseType":"KYC"}"#;
    let signed = sign(&[new.clone(), old.clone()], "msg_1", 1_700_000_000, body).expect("sign");
    assert_eq!(signed.webhook_signature.split(' ').count(), 2);
    assert_eq!(signed.flinks_authenticity_key, flinks_authenticity_key(&new, body));
    let headers = StandardHeaders {
        id: Some("msg_1"),
        timestamp: Some("1700000000"),
        signature: Some(&signed.webhook_signature),
    };
    for only in [new, old] {
        assert_eq!(verify_standard(&[only], headers, body, 1_700_000_000, 300), Ok(()));
    }
    let stranger = EndpointSecret::generate();
    assert_eq!(verify_standard(&[stranger], headers, body, 1_700_000_000, 300), Err(VerifyError::SignatureMismatch));
    assert!(matches!(sign(&[], "msg_1", 0, body), Err(SigningError::NoSecret)));
}

use crate::secret::hex;

#[test]
fn standard_signatures_are_the_spec_crates_for_any_body() {
    // The spec's own crate is the oracle: the same signature for bodies of every size,
    // the empty one and multi-byte UTF-8 included.
    let key = EndpointSecret::generate();
    let oracle = standardwebhooks::Webhook::from_bytes(key.standard_key()).expect("key");
    let fixture =
        std::fs::read(format!("{}/../../testdata/flinks/get_accounts_detail.json", env!("CARGO_MANIFEST_DIR")))
            .expect("fixture");
    let long = "é€😀 ".repeat(20_000);
    for body in [&b""[..], b"{}", &fixture, long.as_bytes()] {
        for (id, timestamp) in [("msg_1", 0_i64), ("msg_01JD0000000000000000000000", 1_773_511_200), ("x", -5)] {
            assert_eq!(
                standard_signature(&key, id, timestamp, body),
                oracle.sign(id, timestamp, body).expect("oracle signs"),
                "{} bytes, {id}, {timestamp}",
                body.len()
            );
        }
    }
}
