//! Tests of the callback types and parser against the shared synthetic fixtures.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../testdata/flinks/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn parse(body: &[u8]) -> Result<Callback, CallbackError> {
    parse_callback(body, ParseLimits::default())
}

fn field_errors(body: &[u8]) -> Vec<FieldError> {
    match parse(body) {
        Err(CallbackError::Invalid(errors)) => errors,
        other => panic!("expected a schema error, got {other:?}"),
    }
}

#[test]
fn every_fixture_parses_into_its_type_with_its_keys() {
    let kyc = parse(&fixture("kyc.json")).expect("kyc");
    let detail = parse(&fixture("get_accounts_detail.json")).expect("detail");
    let investments = parse(&fixture("investments.json")).expect("investments");

    assert_eq!(kyc.response_type(), ResponseType::Kyc);
    assert_eq!(detail.response_type(), ResponseType::GetAccountsDetail);
    assert_eq!(investments.response_type(), ResponseType::Investments);
    // KYC and GetAccountsDetail of one connection share LoginId and RequestId.
    assert_eq!(kyc.keys().login_id, detail.keys().login_id);
    assert_eq!(kyc.keys().request_id, detail.keys().request_id);
    assert_eq!(kyc.keys().login_id.as_deref(), Some("c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e"));
    assert_eq!(kyc.keys().tag.as_deref(), Some("applicant=APP-20931"));
}

#[test]
fn money_is_the_exact_decimal_that_was_sent() {
    let Callback::GetAccountsDetail(detail) = parse(&fixture("get_accounts_detail.json")).expect("parse") else {
        panic!("wrong type")
    };
    let first = &detail.accounts[0].transactions[0];
    assert_eq!(first.debit, Some(Decimal::from_str("1150.0").expect("decimal")));
    assert_eq!(first.credit, None);
    assert_eq!(first.balance, Some(Decimal::from_str("2384.17").expect("decimal")));
    // Running balances add up exactly in decimal arithmetic (they would not in f64).
    for account in &detail.accounts {
        for pair in account.transactions.windows(2) {
            let (newer, older) = (&pair[0], &pair[1]);
            let delta = newer.credit.unwrap_or_default() - newer.debit.unwrap_or_default();
            assert_eq!(older.balance.expect("balance") + delta, newer.balance.expect("balance"));
        }
    }
    let body = br#"{"ResponseType":"GetAccountsDetail","Login":{"Id":"x"},"Accounts":[{"Balance":{"Current":12345678901234567.89}}]}"#;
    let Callback::GetAccountsDetail(detail) = parse(body).expect("parse") else { panic!("type") };
    let current = detail.accounts[0].balance.as_ref().and_then(|b| b.current).expect("current");
    assert_eq!(current.to_string(), "12345678901234567.89");
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let body = br#"{"ResponseType":"KYC","Login":{"Id":"abc","Shiny":1},"Holders":[],"NewThing":{"a":[1,2.50]}}"#;
    let Callback::Kyc(kyc) = parse(body).expect("parse") else { panic!("type") };
    assert_eq!(kyc.login.extra["Shiny"], serde_json::json!(1));
    let again = serde_json::to_value(&kyc).expect("serialise");
    assert_eq!(again["NewThing"]["a"][1].to_string(), "2.50");
    assert_eq!(again["ResponseType"], "KYC");
}

#[test]
fn a_missing_login_id_is_reported_at_its_path() {
    for response_type in ["KYC", "GetAccountsDetail"] {
        let body = format!(r#"{{"ResponseType":"{response_type}","Login":{{"Username":"u"}}}}"#);
        let errors = field_errors(body.as_bytes());
        assert_eq!(errors[0].path, "$.Login.Id", "{response_type}");
        let body = format!(r#"{{"ResponseType":"{response_type}"}}"#);
        assert_eq!(field_errors(body.as_bytes())[0].path, "$.Login");
        let body = format!(r#"{{"ResponseType":"{response_type}","Login":{{"Id":" "}}}}"#);
        assert_eq!(field_errors(body.as_bytes())[0].path, "$.Login.Id");
    }
    // Investments does not require a Login.
    assert!(parse(br#"{"ResponseType":"Investments"}"#).is_ok());
}

#[test]
fn a_wrongly_typed_field_is_reported_at_its_path() {
    let body =
        br#"{"ResponseType":"GetAccountsDetail","Login":{"Id":"x"},"Accounts":[{},{"Transactions":[{"Debit":[12]}]}]}"#;
    let errors = field_errors(body);
    assert_eq!(errors[0].path, "$.Accounts[1].Transactions[0].Debit");
    assert!(!errors[0].message.contains("line"), "{}", errors[0].message);
}

#[test]
fn the_response_type_must_be_known() {
    assert_eq!(field_errors(br#"{"Login":{"Id":"x"}}"#)[0].path, "$.ResponseType");
    let errors = field_errors(br#"{"ResponseType":"PayEvent"}"#);
    assert!(errors[0].message.contains("PayEvent"), "{}", errors[0].message);
    assert_eq!(field_errors(br#"{"ResponseType":7}"#)[0].path, "$.ResponseType");
}

#[test]
fn malformed_shapes_are_told_apart() {
    assert!(matches!(parse(b"{\"ResponseType\": "), Err(CallbackError::NotJson { .. })));
    assert!(matches!(parse(b"not json"), Err(CallbackError::NotJson { .. })));
    assert!(matches!(parse(b""), Err(CallbackError::NotJson { .. })));
    assert!(matches!(parse(b"[1,2]"), Err(CallbackError::NotAnObject)));
    assert!(matches!(parse(b"\"KYC\""), Err(CallbackError::NotAnObject)));
    assert!(matches!(parse(b"{} trailing"), Err(CallbackError::NotJson { .. })));
}

#[test]
fn nesting_is_capped_but_brackets_in_strings_do_not_count() {
    let deep = format!("{{\"ResponseType\":\"KYC\",\"x\":{}{}}}", "[".repeat(40), "]".repeat(40));
    assert!(matches!(parse(deep.as_bytes()), Err(CallbackError::TooDeep { max_depth: 32 })));
    let quoted = format!(r#"{{"ResponseType":"KYC","Login":{{"Id":"x"}},"x":"{}\"{{"}}"#, "[".repeat(40));
    assert!(parse(quoted.as_bytes()).is_ok());
}

#[test]
fn a_repeated_response_type_is_named_as_repeated() {
    let errors = field_errors(br#"{"ResponseType":"KYC","ResponseType":"KYC","Login":{"Id":"x"}}"#);
    assert_eq!(errors[0].path, "$.ResponseType");
    assert!(errors[0].message.contains("once"), "{}", errors[0].message);
}

#[test]
fn an_amount_too_precise_to_hold_is_reported_at_the_field_without_serde_internals() {
    for debit in ["1e99999", "123456789012345678901234567890123456789"] {
        let body = format!(
            r#"{{"ResponseType":"GetAccountsDetail","Login":{{"Id":"x"}},"Accounts":[{{"Transactions":[{{"Debit":{debit}}}]}}]}}"#
        );
        let errors = field_errors(body.as_bytes());
        assert_eq!(errors[0].path, "$.Accounts[0].Transactions[0].Debit", "{errors:?}");
        assert!(!errors[0].message.contains("serde_json"), "{}", errors[0].message);
        assert!(errors[0].message.contains("28 significant digits"), "{}", errors[0].message);
    }
}

/// Every node of a JSON document, as the path of keys and indexes leading to it.
fn every_path(value: &serde_json::Value, here: &mut Vec<serde_json::Value>, out: &mut Vec<Vec<serde_json::Value>>) {
    out.push(here.clone());
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                here.push(key.as_str().into());
                every_path(child, here, out);
                here.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                here.push(index.into());
                every_path(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn node<'a>(value: &'a mut serde_json::Value, path: &[serde_json::Value]) -> &'a mut serde_json::Value {
    path.iter().fold(value, |node, step| match step {
        serde_json::Value::String(key) => &mut node[key.as_str()],
        serde_json::Value::Number(index) => {
            &mut node[index.as_u64().and_then(|i| usize::try_from(i).ok()).unwrap_or(0)]
        }
        _ => node,
    })
}

/// Ingest's quick check (`check.rs`) must accept exactly what the typed parser accepts,
/// with the same keys. Each fixture is written out as the types serialise it (every field
/// they know, `null` where absent), then every field and array element in turn is set to
/// every kind of JSON value: a field the quick shapes lack, or hold with a laxer type,
/// shows up as a body one side accepts and the other refuses.
#[test]
fn the_quick_check_agrees_with_the_typed_parser_on_every_field_and_kind_of_value() {
    let replacements = [
        r#""x""#,
        r#""""#,
        "1",
        "-1",
        "1.5",
        "70000",
        "1e400",
        "123456789012345678901234567890123",
        "true",
        "null",
        "{}",
        "[]",
        "[{}]",
        "[1]",
        r#"{"Id": "x"}"#,
    ];
    let mut compared = 0;
    for name in ["kyc.json", "get_accounts_detail.json", "investments.json"] {
        let full = match parse(&fixture(name)).expect(name) {
            Callback::Kyc(c) => serde_json::to_value(c),
            Callback::GetAccountsDetail(c) => serde_json::to_value(c),
            Callback::Investments(c) => serde_json::to_value(c),
        }
        .expect("serialise");
        let mut paths = Vec::new();
        every_path(&full, &mut Vec::new(), &mut paths);
        for path in paths.iter().filter(|path| !path.is_empty()) {
            for replacement in replacements {
                let mut body = full.clone();
                *node(&mut body, path) = serde_json::from_str(replacement).expect("replacement");
                let body = serde_json::to_vec(&body).expect("body");
                let quick = super::check::quick_keys(&body, ParseLimits::default());
                let typed = parse(&body).map(|callback| callback.keys());
                match (&quick, &typed) {
                    (Some(keys), Ok(expected)) => assert_eq!(keys, expected, "{name} {path:?} = {replacement}"),
                    (None, Err(_)) => {}
                    _ => panic!(
                        "{name}: {path:?} = {replacement}: quick check {quick:?}, parser {:?}",
                        typed.map_err(|e| e.to_string())
                    ),
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 1_000, "only {compared} bodies compared");
}

#[test]
fn validation_returns_the_parsers_keys_and_errors() {
    for name in ["kyc.json", "get_accounts_detail.json", "investments.json"] {
        let body = fixture(name);
        assert_eq!(validate_callback(&body, ParseLimits::default()).expect(name), parse(&body).expect(name).keys());
    }
    // The ResponseType read from the first bytes: escaped, repeated, not first, spaced out,
    // unknown, not a string.
    let bodies: [&[u8]; 13] = [
        br#"{"ResponseType": "KYC", "Login": {"Id": 7}}"#,
        br#"{"ResponseType": "KYC", "Login": {"Id": "L"}}"#,
        br#"{"ResponseType": "K\u0059C", "Login": {"Id": "L"}}"#,
        br#"{"ResponseType": "KYC", "Login": {"Id": "L"}, "ResponseType": "KYC"}"#,
        br#"{"ResponseType": "KYC", "Login": {"Id": "L"}, "ResponseType": "Investments"}"#,
        br#"{"Login": {"Id": "L"}, "ResponseType": "KYC"}"#,
        b" \n{ \"ResponseType\" :\t\"KYC\" , \"Login\": {\"Id\": \"L\"}}",
        br#"{"ResponseType": "KYCX", "Login": {"Id": "L"}}"#,
        br#"{"ResponseType": ["KYC"], "Login": {"Id": "L"}}"#,
        // Strings that a skipped field holds: half a surrogate pair, a whole pair, bytes
        // that are not UTF-8.
        br#"{"ResponseType": "KYC", "Login": {"Id": "L"}, "Extra": "\ud800"}"#,
        br#"{"ResponseType": "KYC", "Login": {"Id": "L"}, "Extra": "\udc00x"}"#,
        br#"{"ResponseType": "KYC", "Login": {"Id": "L"}, "Extra": "\ud83d\ude00"}"#,
        b"{\"ResponseType\": \"KYC\", \"Login\": {\"Id\": \"L\"}, \"Extra\": \"\xff\xfe\"}",
    ];
    for body in bodies {
        assert_eq!(
            format!("{:?}", validate_callback(body, ParseLimits::default())),
            format!("{:?}", parse(body).map(|callback| callback.keys())),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(validate_callback(bodies[1], ParseLimits::default()).is_ok());
    assert!(validate_callback(bodies[3], ParseLimits::default()).is_err());
    assert!(validate_callback(bodies[9], ParseLimits::default()).is_err());
    assert!(validate_callback(bodies[11], ParseLimits::default()).is_ok());
    assert!(validate_callback(bodies[12], ParseLimits::default()).is_err());
}
