//! The callback the bench sends: the GetAccountsDetail fixture, grown to a chosen size with
//! more transactions of the same shape, so the server parses and stores a real payload.
//!
//! Each added transaction is one of its own, as in a real statement: a random `Id` (a UUID,
//! as Flinks gives), its own date, description, amount and running balance. Copies of the
//! fixture's five would make the body far more compressible than a bank's (lz4 packed the
//! copies about 9 to 1 where a real statement packs about 3 to 1), and anything that stores
//! or sends the body compressed would look faster here than it is.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// The synthetic GetAccountsDetail fixture (about 5 KB).
const FIXTURE: &[u8] = include_bytes!("../../../../../testdata/flinks/get_accounts_detail.json");

/// The same seed every run, so that two builds are measured on the same bytes.
const SEED: u64 = 0x00f1_4b00_c0ff_ee00;

/// Merchants and payees of a chequing account, with a reference that changes per line.
const DESCRIPTIONS: [&str; 12] = [
    "ACHAT POS - EPICERIE DU QUARTIER",
    "ACHAT POS - PHARMACIE CENTRALE",
    "ACHAT POS - STATION SERVICE",
    "PAIEMENT FACTURE - HYDRO-ESTRIE",
    "PAIEMENT FACTURE - TELECOM",
    "INTERAC E-TRF SENT",
    "INTERAC E-TRF RECEIVED",
    "DEPOT DIRECT - PAIE",
    "RETRAIT GAB - SUCC KING OUEST",
    "PRELEVEMENT - ASSURANCE AUTO",
    "ACHAT EN LIGNE - LIBRAIRIE",
    "FRAIS MENSUELS",
];

/// The fixture with its first account's transactions followed by new ones until the body
/// has at least `bytes` bytes (the fixture as it is when it is already that large).
pub fn get_accounts_detail(bytes: usize) -> Result<Vec<u8>, String> {
    if bytes <= FIXTURE.len() {
        return Ok(FIXTURE.to_vec());
    }
    let mut detail: Value = serde_json::from_slice(FIXTURE).map_err(|e| format!("the bundled fixture: {e}"))?;
    let mut body = serde_json::to_vec(&detail).map_err(|e| e.to_string())?;
    let mut random = ChaCha8Rng::seed_from_u64(SEED);
    let (mut day, mut balance) = (chrono::NaiveDate::from_ymd_opt(2026, 3, 11).ok_or("a date")?, 2_384.17_f64);
    while body.len() < bytes {
        let transactions = detail
            .pointer_mut("/Accounts/0/Transactions")
            .and_then(Value::as_array_mut)
            .ok_or("the bundled fixture has no transactions")?;
        // A line is under 250 bytes: as many as surely fit, then the body is measured again.
        let lines = ((bytes - body.len()) / 250).clamp(1, 64);
        for _ in 0..lines {
            transactions.push(transaction(&mut random, &mut day, &mut balance));
        }
        body = serde_json::to_vec(&detail).map_err(|e| e.to_string())?;
    }
    Ok(body)
}

/// One more (older) line of the statement.
fn transaction(random: &mut ChaCha8Rng, day: &mut chrono::NaiveDate, balance: &mut f64) -> Value {
    if random.gen_ratio(1, 3) {
        *day = day.pred_opt().unwrap_or(*day);
    }
    let cents = |random: &mut ChaCha8Rng, most: u32| f64::from(random.gen_range(100..most)) / 100.0;
    let description = DESCRIPTIONS[random.gen_range(0..DESCRIPTIONS.len())];
    let reference = random.gen_range(1_000..100_000);
    let (debit, credit) = match random.gen_ratio(1, 5) {
        true => (None, Some(cents(random, 250_000))),
        false => (Some(cents(random, 40_000)), None),
    };
    // Walking back in time: the balance before this line.
    *balance = ((*balance + debit.unwrap_or(0.0) - credit.unwrap_or(0.0)) * 100.0).round() / 100.0;
    let id = uuid::Builder::from_random_bytes(random.gen()).into_uuid();
    json!({
        "Date": day.format("%Y-%m-%d").to_string(),
        "Code": null,
        "Description": format!("{description} #{reference}"),
        "Debit": debit,
        "Credit": credit,
        "Balance": *balance,
        "Id": id.to_string(),
    })
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
        assert_eq!(get_accounts_detail(8 * 1024), get_accounts_detail(8 * 1024), "the same bytes every run");
    }

    #[test]
    fn the_added_transactions_are_each_their_own() {
        let body: Value = serde_json::from_slice(&get_accounts_detail(64 * 1024).expect("payload")).expect("json");
        let transactions = body["Accounts"][0]["Transactions"].as_array().expect("transactions");
        assert!(transactions.len() > 300, "{}", transactions.len());
        let distinct = |field: &str| {
            transactions.iter().map(|t| t[field].to_string()).collect::<std::collections::HashSet<_>>().len()
        };
        assert_eq!(distinct("Id"), transactions.len(), "every Id its own");
        assert!(distinct("Description") > transactions.len() * 9 / 10, "references vary");
        assert!(distinct("Balance") > transactions.len() * 9 / 10, "a running balance");
        assert!(distinct("Date") > 50, "dates go back");
        for transaction in transactions {
            uuid::Uuid::parse_str(transaction["Id"].as_str().expect("id")).expect("a UUID");
            assert!(transaction["Debit"].is_null() != transaction["Credit"].is_null(), "{transaction}");
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
