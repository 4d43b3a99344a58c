//! The synthetic data is deterministic, realistic and self-consistent.

use chrono::{DateTime, NaiveDate, Utc};
use finhook_core::flinks::{parse_callback, ParseLimits, ResponseType};
use rust_decimal::Decimal;

use super::*;
use crate::sandbox::institutions::{find, INSTITUTIONS};

fn connection<'a>(institution: &str, login_id: &'a str) -> Connection<'a> {
    Connection {
        institution: find(institution).expect("institution"),
        login_id,
        request_id: "5f1f2a9e-0000-4000-8000-000000000001",
        username: "Greatday",
        tag: Some("user=42"),
        as_of: DateTime::from_timestamp(1_773_511_200, 0).unwrap_or_default(),
    }
}

fn all_days() -> DetailOptions {
    DetailOptions { days: 365, ..DetailOptions::webhook() }
}

#[test]
fn the_same_login_always_gets_the_same_data_and_another_login_does_not() {
    let a = connection("FlinksCapital", "0b7d4e0e-1111-4a5b-9c3d-222222222222");
    let b = connection("FlinksCapital", "0b7d4e0e-1111-4a5b-9c3d-333333333333");
    let first = serde_json::to_string(&accounts_detail(&a, &all_days())).expect("json");
    assert_eq!(first, serde_json::to_string(&accounts_detail(&a, &all_days())).expect("json"));
    assert_eq!(kyc(&a), kyc(&a));
    assert_ne!(first, serde_json::to_string(&accounts_detail(&b, &all_days())).expect("json"));
    assert_ne!(kyc(&a).holders, kyc(&b).holders);
}

#[test]
fn histories_are_newest_first_with_one_side_set_and_balances_that_add_up() {
    for institution in INSTITUTIONS {
        for n in 0..20 {
            let login = format!("login-{}-{n}", institution.code);
            let detail = accounts_detail(&connection(institution.code, &login), &all_days());
            assert_eq!(detail.accounts.len(), 3);
            for account in &detail.accounts {
                let owed = account.category.as_deref() == Some("Credits");
                let current = account.balance.as_ref().and_then(|b| b.current).expect("current");
                if let Some(newest) = account.transactions.first() {
                    assert_eq!(newest.balance, Some(current), "the newest running balance is the current balance");
                }
                for pair in account.transactions.windows(2) {
                    let (newer, older) = (&pair[0], &pair[1]);
                    assert!(newer.date >= older.date, "newest first");
                    let (d, c) = (newer.debit.unwrap_or_default(), newer.credit.unwrap_or_default());
                    let effect = if owed { d - c } else { c - d };
                    assert_eq!(
                        older.balance.expect("b") + effect,
                        newer.balance.expect("b"),
                        "{login} {:?}",
                        account.title
                    );
                }
                for tx in &account.transactions {
                    assert!(tx.debit.is_some() != tx.credit.is_some(), "exactly one of Debit and Credit");
                    assert!(tx.debit.or(tx.credit).is_some_and(|amount| amount > Decimal::ZERO));
                    assert_eq!(tx.code, None);
                    if owed {
                        assert!(tx.balance.expect("b") >= Decimal::ZERO, "nobody owes a negative amount");
                    }
                }
            }
        }
    }
}

#[test]
fn a_year_holds_the_canadian_staples() {
    let detail = accounts_detail(&connection("FlinksCapital", "staples"), &all_days());
    let chequing: Vec<String> = detail.accounts[0].transactions.iter().filter_map(|t| t.description.clone()).collect();
    for staple in
        ["PAYROLL DEPOSIT", "RENT", "POS PURCHASE", "BILL PAYMENT", "INTERAC E-TRANSFER", "PAYMENT - CREDIT CARD"]
    {
        assert!(chequing.iter().any(|d| d.contains(staple)), "{staple} missing");
    }
    let paydays = chequing.iter().filter(|d| d.starts_with("PAYROLL")).count();
    assert!((25..=27).contains(&paydays), "biweekly pay over a year: {paydays}");
    let any_nsf = (0..40).any(|n| {
        let login = format!("nsf-{n}");
        accounts_detail(&connection("FlinksCapital", &login), &all_days()).accounts[0]
            .transactions
            .iter()
            .any(|t| t.description.as_deref().is_some_and(|d| d.contains("NSF")))
    });
    assert!(any_nsf, "some people bounce a payment");
}

#[test]
fn ninety_days_is_the_newest_part_of_the_year() {
    let c = connection("CaisseBoreale", "window");
    let year = accounts_detail(&c, &all_days());
    let quarter = accounts_detail(&c, &DetailOptions::webhook());
    let oldest =
        NaiveDate::from_ymd_opt(2026, 12, 15).map(|_| c.as_of.date_naive() - chrono::Duration::days(89)).expect("date");
    for (q, y) in quarter.accounts.iter().zip(&year.accounts) {
        assert!(!q.transactions.is_empty());
        assert_eq!(q.transactions[..], y.transactions[..q.transactions.len()]);
        assert!(q
            .transactions
            .iter()
            .all(|t| t.date.as_deref().expect("d") >= oldest.format("%Y-%m-%d").to_string().as_str()));
        assert!(y.transactions.len() > q.transactions.len());
    }
}

#[test]
fn identity_fields_appear_only_when_asked_for() {
    let c = connection("FlinksCapital", "identity");
    let with = accounts_detail(&c, &DetailOptions::webhook());
    assert!(with.accounts.iter().all(|a| a.transit_number.as_ref().is_some_and(|t| t.len() == 5)
        && a.institution_number.as_deref() == Some("777")
        && a.account_number.is_some()));
    let without = accounts_detail(&c, &DetailOptions { with_account_identity: false, ..DetailOptions::webhook() });
    assert!(without
        .accounts
        .iter()
        .all(|a| a.transit_number.is_none() && a.institution_number.is_none() && a.account_number.is_none()));
    let only = with.accounts[1].id.clone().expect("id");
    let filtered =
        accounts_detail(&c, &DetailOptions { accounts_filter: Some(vec![only.clone()]), ..DetailOptions::webhook() });
    assert_eq!(filtered.accounts.len(), 1);
    assert_eq!(filtered.accounts[0].id.as_deref(), Some(only.as_str()));
}

#[test]
fn every_payload_is_a_valid_callback_and_investments_add_up() {
    let c = connection("TundraWealth", "wealthy");
    let bodies = [
        as_callback(&kyc(&c), ResponseType::Kyc),
        as_callback(&accounts_detail(&c, &DetailOptions::webhook()), ResponseType::GetAccountsDetail),
        as_callback(&investments(&c).expect("investment institution"), ResponseType::Investments),
    ];
    for body in &bodies {
        let callback = parse_callback(body, ParseLimits::default()).expect("valid callback");
        assert_eq!(callback.keys().login_id.as_deref(), Some("wealthy"));
        assert_eq!(callback.keys().tag.as_deref(), Some("user=42"));
        assert!(body.starts_with(b"{\"ResponseType\":"));
    }
    let wealth = investments(&c).expect("wealth");
    let detail = accounts_detail(&c, &DetailOptions::webhook());
    for account in &wealth.institution.expect("institution").accounts {
        let positions: Decimal = account.positions.iter().filter_map(|p| p.market_value).sum();
        assert_eq!(account.account_value, Some(account.cash.expect("cash") + positions));
        for p in &account.positions {
            assert_eq!(p.market_value, Some((p.quantity.expect("q") * p.price.expect("p")).round_dp(2)));
        }
        let twin = detail.accounts.iter().find(|a| a.id == account.id).expect("the same account in GetAccountsDetail");
        assert_eq!(twin.balance.as_ref().and_then(|b| b.current), account.account_value);
    }
    assert!(investments(&connection("FlinksCapital", "x")).is_none());
    let _: DateTime<Utc> = c.as_of;
}

#[test]
fn balances_stay_plausible_over_the_year() {
    for institution in INSTITUTIONS {
        for n in 0..25 {
            let login = format!("plausible-{n}");
            let detail = accounts_detail(&connection(institution.code, &login), &all_days());
            for account in &detail.accounts {
                let balance = account.balance.as_ref().expect("balance");
                let current = balance.current.expect("current");
                match account.account_type_name.as_deref() {
                    Some("Chequing" | "CashManagement") => {
                        assert!(current < Decimal::from(15_000), "{} {login}: chequing {current}", institution.code)
                    }
                    Some("CreditCard") => {
                        assert!(current <= balance.limit.expect("limit"), "{login}: card {current} over its limit")
                    }
                    _ => {}
                }
            }
        }
    }
}
