//! The synthetic payloads of one sandbox connection, built from the typed Flinks structs:
//! the same functions answer the banking API and fill the webhooks, so the two always agree.

use chrono::{DateTime, NaiveDate, Utc};
use finhook_core::flinks::{GetAccountsDetail, InvestmentInstitution, Investments, Kyc, Login};
use serde_json::{json, Value};

use super::banking::{self, DetailOptions};
use super::institutions::{Institution, InstitutionKind};
use super::{people, wealth};

/// Who, where and when: everything a payload depends on.
#[derive(Debug, Clone, Copy)]
pub struct Connection<'a> {
    pub institution: &'static Institution,
    pub login_id: &'a str,
    pub request_id: &'a str,
    pub username: &'a str,
    pub tag: Option<&'a str>,
    /// When the request was made; the data is "as of" this moment.
    pub as_of: DateTime<Utc>,
}

impl Connection<'_> {
    fn as_of_date(&self) -> NaiveDate {
        self.as_of.date_naive()
    }

    pub fn login(&self) -> Login {
        Login {
            username: Some(self.username.to_string()),
            is_scheduled_refresh: Some(false),
            // Flinks style: UTC, no offset, 7 fractional digits.
            last_refresh: Some(format!("{}0", self.as_of.format("%Y-%m-%dT%H:%M:%S%.6f"))),
            login_type: Some("Personal".to_string()),
            id: self.login_id.to_string(),
            extra: Default::default(),
        }
    }

    fn investment_accounts(&self) -> Vec<finhook_core::flinks::InvestmentAccount> {
        let plans = banking::plans(self.institution.kind);
        wealth::accounts(self.login_id, self.as_of_date(), |key| {
            plans.iter().find(|p| p.key == key).map(|p| banking::account_id(self.login_id, p)).unwrap_or_default()
        })
    }
}

/// The identity callback.
pub fn kyc(connection: &Connection<'_>) -> Kyc {
    Kyc {
        http_status_code: Some(200),
        holders: vec![people::holder(connection.login_id)],
        login: connection.login(),
        institution: Some(connection.institution.code.to_string()),
        request_id: Some(connection.request_id.to_string()),
        tag: connection.tag.map(str::to_string),
        extra: Default::default(),
    }
}

/// The 200 body of GetAccountsDetail (and, with `ResponseType` added, its webhook).
pub fn accounts_detail(connection: &Connection<'_>, options: &DetailOptions) -> GetAccountsDetail {
    let holder = people::holder(connection.login_id);
    let investments = connection.investment_accounts();
    let registered_value = |key: &str| {
        let id = banking::plans(connection.institution.kind)
            .iter()
            .find(|p| p.key == key)
            .map(|p| banking::account_id(connection.login_id, p));
        investments.iter().find(|a| a.id == id).and_then(|a| a.account_value)
    };
    GetAccountsDetail {
        http_status_code: Some(200),
        accounts: banking::accounts(
            connection.institution,
            connection.login_id,
            &holder,
            connection.as_of_date(),
            options,
            registered_value,
        ),
        institution_name: Some(connection.institution.name.to_string()),
        login: connection.login(),
        institution_id: Some(connection.institution.id),
        institution: Some(connection.institution.code.to_string()),
        request_id: Some(connection.request_id.to_string()),
        tag: connection.tag.map(str::to_string),
        extra: Default::default(),
    }
}

/// The wealth callback; `None` for institutions without investment accounts.
pub fn investments(connection: &Connection<'_>) -> Option<Investments> {
    (connection.institution.kind == InstitutionKind::Investment).then(|| Investments {
        http_status_code: Some(200),
        institution: Some(InvestmentInstitution {
            name: Some(connection.institution.code.to_string()),
            id: Some(connection.institution.id.to_string()),
            accounts: connection.investment_accounts(),
            extra: Default::default(),
        }),
        login: Some(connection.login()),
        request_id: Some(connection.request_id.to_string()),
        tag: connection.tag.map(str::to_string),
        extra: Default::default(),
    })
}

/// The 200 body of GetAccountsSummary: balances and eligibility ratios, no transactions.
pub fn accounts_summary(connection: &Connection<'_>) -> Value {
    let options = DetailOptions { with_account_identity: false, with_transactions: false, ..DetailOptions::webhook() };
    let detail = accounts_detail(connection, &options);
    let accounts: Vec<Value> = detail
        .accounts
        .iter()
        .map(|account| {
            let eligible = account.category.as_deref() == Some("Operations");
            json!({
                "Id": account.id,
                "Title": account.title,
                "AccountNumber": null,
                "Balance": account.balance,
                "Category": account.category,
                "Type": account.account_type_name,
                "Currency": account.currency,
                "AccountType": account.account_type,
                "EftEligibleRatio": if eligible { 1.0 } else { 0.0 },
                "ETransferEligibleRatio": if eligible { 1.0 } else { 0.0 },
            })
        })
        .collect();
    json!({
        "HttpStatusCode": 200,
        "Accounts": accounts,
        "InstitutionName": detail.institution_name,
        "Login": detail.login,
        "InstitutionId": detail.institution_id,
        "Institution": detail.institution,
        "RequestId": detail.request_id,
        "Tag": detail.tag,
    })
}

/// Serialises a payload as a callback: the same body with `ResponseType` added.
pub fn as_callback<T: serde::Serialize>(payload: &T, response_type: finhook_core::flinks::ResponseType) -> Vec<u8> {
    let mut callback = serde_json::Map::new();
    callback.insert("ResponseType".to_string(), Value::String(response_type.as_str().to_string()));
    if let Ok(Value::Object(fields)) = serde_json::to_value(payload) {
        callback.extend(fields);
    }
    serde_json::to_vec(&callback).unwrap_or_default()
}

#[cfg(test)]
mod tests;
