//! `v1a` against RFC 8037's published Ed25519 vectors and against a second implementation
//! (Node.js's `crypto`, which is OpenSSL's Ed25519), both ways.

use super::*;

/// RFC 8037, appendix A.1: the private key `d` (the seed) and its public key `x`.
const RFC_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// A.3: the RFC 7638 thumbprint of that key.
const RFC_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
/// A.4: a JWS signing input and its Ed25519 signature.
const RFC_INPUT: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
const RFC_SIGNATURE: &str = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn rfc_key() -> SigningKey {
    let seed: [u8; 32] = URL_SAFE_NO_PAD.decode(RFC_D).expect("d").try_into().expect("32 bytes");
    SigningKey::from_seed(seed)
}

fn headers<'a>(id: &'a str, timestamp: &'a str, signature: &'a str) -> StandardHeaders<'a> {
    StandardHeaders { id: Some(id), timestamp: Some(timestamp), signature: Some(signature) }
}

#[test]
fn the_rfc_8037_key_signature_and_thumbprint_come_out_as_published() {
    let key = rfc_key();
    assert_eq!(key.public_key().to_jwk().x.as_deref(), Some(RFC_X));
    assert_eq!(key.public_key().kid(), RFC_THUMBPRINT);
    let signature = key.pair.sign(RFC_INPUT.as_bytes());
    assert_eq!(URL_SAFE_NO_PAD.encode(signature.as_ref()), RFC_SIGNATURE);
    let published = URL_SAFE_NO_PAD.decode(RFC_SIGNATURE).expect("signature");
    assert!(key.public_key().verifies(RFC_INPUT.as_bytes(), &published));
    assert!(!key.public_key().verifies(b"another input", &published));
}

#[test]
fn a_v1a_signature_verifies_with_its_key_and_nothing_else() {
    let key = SigningKey::generate().expect("key");
    let other = SigningKey::generate().expect("key");
    let (id, body, now) = ("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", br#"{"ResponseType":"KYC"}"#.as_slice(), 1_674_087_231);
    let signature = key.sign_v1a(id, now, body);
    assert!(signature.starts_with("v1a,"));
    let ts = now.to_string();
    let check =
        |keys: &[PublicKey], body: &[u8], sig: &str, at: i64| verify_v1a(keys, headers(id, &ts, sig), body, at, 300);
    assert_eq!(check(&[key.public_key()], body, &signature, now), Ok(()));
    // Any of several keys (a rotation), and among other entries (a v1 HMAC beside it).
    let both = format!("v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= {signature}");
    assert_eq!(check(&[other.public_key(), key.public_key()], body, &both, now), Ok(()));
    assert_eq!(check(&[other.public_key()], body, &signature, now), Err(VerifyError::SignatureMismatch));
    assert_eq!(check(&[key.public_key()], b"{}", &signature, now), Err(VerifyError::SignatureMismatch));
    // The same bytes under the v1 tag are not an Ed25519 signature.
    let relabelled = signature.replacen("v1a,", "v1,", 1);
    assert_eq!(check(&[key.public_key()], body, &relabelled, now), Err(VerifyError::SignatureMismatch));
    assert_eq!(check(&[key.public_key()], body, &signature, now + 301), Err(VerifyError::TimestampTooOld));
    assert_eq!(check(&[], body, &signature, now), Err(VerifyError::NoSecret));
}

#[test]
fn keys_as_text_round_trip_and_bad_ones_say_what_is_wrong() {
    let key = SigningKey::generate().expect("key");
    let text = key.expose_text();
    assert!(text.starts_with("whsk_"));
    let again = SigningKey::parse(&text).expect("parse");
    assert_eq!(again.public_key(), key.public_key());
    let seed_only = format!("whsk_{}", STANDARD.encode(key.seed));
    assert_eq!(SigningKey::parse(&seed_only).expect("seed").public_key(), key.public_key());
    let public = key.public_key().to_text();
    assert_eq!(PublicKey::parse(&public), Ok(key.public_key()));

    assert_eq!(SigningKey::parse("whsec_abc").map(|k| k.public_key()), Err(KeyError::NotASigningKey));
    assert_eq!(SigningKey::parse("whsk_AAAA").map(|k| k.public_key()), Err(KeyError::Length(3, "seed")));
    let mut mismatched = key.seed.to_vec();
    mismatched.extend_from_slice(&SigningKey::generate().expect("key").public_key().0);
    let mismatched = format!("whsk_{}", STANDARD.encode(mismatched));
    assert_eq!(SigningKey::parse(&mismatched).map(|k| k.public_key()), Err(KeyError::Mismatch));
    assert_eq!(PublicKey::parse("whpk_AAAA"), Err(KeyError::Length(3, "public key")));
    assert_eq!(PublicKey::parse(&text), Err(KeyError::NotAPublicKey));
}

#[test]
fn a_signing_key_never_prints_its_secret() {
    let key = rfc_key();
    let printed = format!("{key:?}");
    assert!(printed.contains(RFC_THUMBPRINT), "{printed}");
    assert!(!printed.contains(&STANDARD.encode(key.seed)) && !printed.contains(RFC_D), "{printed}");
}

#[test]
fn a_jwk_set_round_trips_and_refuses_what_is_not_an_ed25519_key() {
    let keys = [rfc_key().public_key(), SigningKey::generate().expect("key").public_key()];
    let set = Jwks::of(&keys);
    let json = serde_json::to_value(&set).expect("json");
    assert_eq!(json["keys"][0]["kty"], "OKP");
    assert_eq!(json["keys"][0]["crv"], "Ed25519");
    assert_eq!(json["keys"][0]["kid"], RFC_THUMBPRINT);
    assert_eq!(json["keys"][0]["use"], "sig");
    let parsed: Jwks = serde_json::from_value(json).expect("parse");
    assert_eq!(parsed.ed25519_keys(), Ok(keys.to_vec()));

    let mut wrong_kid = keys[0].to_jwk();
    wrong_kid.kid = Some("someone-else".into());
    assert!(matches!(PublicKey::from_jwk(&wrong_kid), Err(KeyError::WrongKid { .. })));
    let mut short = keys[0].to_jwk();
    short.x = Some("AAAA".into());
    assert_eq!(PublicKey::from_jwk(&short), Err(KeyError::BadX));
    let rsa = Jwk { kty: "RSA".into(), crv: None, x: None, kid: None, alg: None, use_: None };
    assert!(matches!(PublicKey::from_jwk(&rsa), Err(KeyError::NotEd25519 { .. })));
    // Other key types in a set are skipped; a set with none of ours is an error.
    let mixed = Jwks { keys: vec![rsa.clone(), keys[1].to_jwk()] };
    assert_eq!(mixed.ed25519_keys(), Ok(vec![keys[1]]));
    assert_eq!(Jwks { keys: vec![rsa] }.ed25519_keys(), Err(KeyError::Empty));
}

/// Runs a Node.js script with `input` as its argument; Node's `crypto` is OpenSSL's.
fn node(script: &str, input: &str) -> String {
    let output = std::process::Command::new("node")
        .args(["-e", script, input])
        .output()
        .expect("node (Node.js) runs here; it is the independent Ed25519 implementation of this test");
    assert!(output.status.success(), "node failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_string()
}

#[test]
fn node_verifies_what_we_sign_and_we_verify_what_node_signs() {
    let key = SigningKey::generate().expect("key");
    let (id, now) = ("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1_674_087_231_i64);
    let body = "{\"ResponseType\":\"GetAccountsDetail\",\"Login\":{\"Id\":\"é\"}}";
    let ours = key.sign_v1a(id, now, body.as_bytes());
    let input = serde_json::json!({
        "jwk": key.public_key().to_jwk(),
        "content": format!("{id}.{now}.{body}"),
        "signature": ours.strip_prefix("v1a,").expect("v1a"),
    });
    let verified = node(
        "const c = require('crypto'); const i = JSON.parse(process.argv[1]);
         const k = c.createPublicKey({ key: i.jwk, format: 'jwk' });
         console.log(c.verify(null, Buffer.from(i.content), k, Buffer.from(i.signature, 'base64')));",
        &input.to_string(),
    );
    assert_eq!(verified, "true", "Node's Ed25519 accepts our v1a signature");

    let theirs: serde_json::Value = serde_json::from_str(&node(
        "const c = require('crypto'); const { publicKey, privateKey } = c.generateKeyPairSync('ed25519');
         const sig = c.sign(null, Buffer.from(process.argv[1]), privateKey);
         console.log(JSON.stringify({ jwk: publicKey.export({ format: 'jwk' }), sig: sig.toString('base64') }));",
        &format!("{id}.{now}.{body}"),
    ))
    .expect("node's answer");
    let jwk: Jwk = serde_json::from_value(theirs["jwk"].clone()).expect("node's jwk");
    let public = PublicKey::from_jwk(&jwk).expect("an Ed25519 JWK");
    let entry = format!("v1a,{}", theirs["sig"].as_str().expect("sig"));
    let ts = now.to_string();
    assert_eq!(verify_v1a(&[public], headers(id, &ts, &entry), body.as_bytes(), now, 300), Ok(()));
    assert_eq!(
        verify_v1a(&[public], headers(id, &ts, &entry), b"tampered", now, 300),
        Err(VerifyError::SignatureMismatch)
    );
}
