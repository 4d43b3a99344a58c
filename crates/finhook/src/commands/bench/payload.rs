//! The callback the bench sends: the GetAccountsDetail fixture, grown to a chosen size with
//! more transactions of the same shape, so the server parses and stores a real payload.

use serde_json::Value;

/// The synthetic GetAccountsDetail fixture (about 5 KB).
const FIXTURE: &[u8] = include_bytes!("../../../../../testdata/flinks/get_accounts_detail.json");

/// The fixture with its first account's transactions repeated until the body has at least
/// `bytes` bytes (the fixture as it is when it is already that large).
pub fn get_accounts_detail(bytes: usize) -> Result<Vec<u8>, String> {
    if bytes <= FIXTURE.len() {
        return Ok(FIXTURE.to_vec());
    }
    let mut detail: Value = serde_json::from_slice(FIXTURE).map_err(|e| format!("the bundled fixture: {e}"))?;
    let transactions = detail
        .pointer_mut("/Accounts/0/Transactions")
        .and_then(Value::as_array_mut)
        .ok_or("the bundled fixture has no transactions")?;
    let pattern = transactions.clone();
    let one = serde_json::to_vec(&pattern[0]).map_err(|e| e.to_string())?.len() + 1;
    let base = FIXTURE.len();
    let wanted = bytes.saturating_sub(base).div_ceil(one);
    for n in 0..wanted {
        let mut transaction = pattern[n % pattern.len()].clone();
        transaction["Id"] = Value::String(format!("bench-{n:08}"));
        transactions.push(transaction);
    }
    let mut body = serde_json::to_vec(&detail).map_err(|e| e.to_string())?;
    while body.len() < bytes {
        // The compact form is shorter than the fixture's; one more transaction at a time.
        let transactions = detail
            .pointer_mut("/Accounts/0/Transactions")
            .and_then(Value::as_array_mut)
            .ok_or("the bundled fixture has no transactions")?;
        let mut transaction = pattern[0].clone();
        transaction["Id"] = Value::String(format!("bench-x{:08}", transactions.len()));
        transactions.push(transaction);
        body = serde_json::to_vec(&detail).map_err(|e| e.to_string())?;
    }
    Ok(body)
}

/// `body` once per LoginId of `logins`, each carrying its own (`Login.Id`, shaped like the
/// UUIDs Flinks gives): callback `n` of the run is sent with the `n % logins`-th. One LoginId
/// keeps the body as it is.
pub fn with_logins(body: Vec<u8>, logins: usize) -> Result<Vec<bytes::Bytes>, String> {
    if logins <= 1 {
        return Ok(vec![body.into()]);
    }
    let mut parsed: Value =
        serde_json::from_slice(&body).map_err(|e| format!("--logins: the payload is not JSON: {e}"))?;
    if !parsed.pointer("/Login/Id").is_some_and(Value::is_string) {
        return Err("--logins: the payload has no Login.Id to vary".into());
    }
    (0..logins)
        .map(|n| {
            if let Some(id) = parsed.pointer_mut("/Login/Id") {
                *id = Value::String(login_id(n));
            }
            serde_json::to_vec(&parsed).map(bytes::Bytes::from).map_err(|e| e.to_string())
        })
        .collect()
}

/// The `n`-th LoginId of a run with `--logins`.
pub fn login_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_has_at_least_the_size_asked_and_stays_close_to_it() {
        for size in [0, 5_000, 8 * 1024, 64 * 1024] {
            let body = get_accounts_detail(size).expect("payload");
            assert!(body.len() >= size, "{} < {size}", body.len());
            assert!(body.len() == FIXTURE.len() || body.len() < size + 400, "{} for {size}", body.len());
            let parsed: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(parsed["ResponseType"], "GetAccountsDetail");
        }
    }

    #[test]
    fn each_login_gets_its_own_body_and_one_keeps_the_fixture() {
        let fixture = get_accounts_detail(0).expect("payload");
        assert_eq!(with_logins(fixture.clone(), 1).expect("one"), vec![bytes::Bytes::from(fixture.clone())]);
        let bodies = with_logins(fixture, 3).expect("three");
        let ids: Vec<Value> = bodies
            .iter()
            .map(|body| serde_json::from_slice::<Value>(body).expect("json")["Login"]["Id"].clone())
            .collect();
        assert_eq!(ids, [login_id(0), login_id(1), login_id(2)].map(Value::String));
        let error = with_logins(b"{\"ResponseType\": \"KYC\"}".to_vec(), 2).expect_err("no Login.Id");
        assert!(error.contains("Login.Id"), "{error}");
    }
}
