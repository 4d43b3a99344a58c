//! The serde shapes of Flinks' callback bodies, as documented in `flinks-reference.md`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Fields a sender added that these types do not name; kept verbatim, in order.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// `Login`: the connection. `Id` is the LoginId every callback of a connection shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Login {
    pub username: Option<String>,
    pub is_scheduled_refresh: Option<bool>,
    /// UTC, usually without an offset and with up to 7 fractional digits; kept as sent.
    pub last_refresh: Option<String>,
    #[serde(rename = "Type")]
    pub login_type: Option<String>,
    pub id: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Address {
    pub civic_address: Option<String>,
    pub city: Option<String>,
    pub province: Option<String>,
    pub postal_code: Option<String>,
    #[serde(rename = "POBox")]
    pub po_box: Option<String>,
    pub country: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An account holder; personal information, to be handled as PII.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Holder {
    pub name: Option<String>,
    pub address: Option<Address>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The early identity callback (`ResponseType: "KYC"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Kyc {
    pub http_status_code: Option<u16>,
    #[serde(default)]
    pub holders: Vec<Holder>,
    pub login: Login,
    pub institution: Option<String>,
    pub request_id: Option<String>,
    pub tag: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Balance {
    pub available: Option<Decimal>,
    pub current: Option<Decimal>,
    pub limit: Option<Decimal>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One bank transaction; exactly one of `Debit` and `Credit` is normally set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Transaction {
    /// `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Deprecated by Flinks; always `null` in practice.
    pub code: Option<serde_json::Value>,
    pub description: Option<String>,
    pub debit: Option<Decimal>,
    pub credit: Option<Decimal>,
    /// The running balance after this transaction.
    pub balance: Option<Decimal>,
    pub id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Account {
    #[serde(default)]
    pub transactions: Vec<Transaction>,
    pub transit_number: Option<String>,
    pub institution_number: Option<String>,
    pub overdraft_limit: Option<Decimal>,
    pub title: Option<String>,
    pub account_number: Option<String>,
    pub last_four_digits: Option<String>,
    pub balance: Option<Balance>,
    /// `Operations`, `Credits`, `Products` or `Other`.
    pub category: Option<String>,
    #[serde(rename = "Type")]
    pub account_type_name: Option<String>,
    pub currency: Option<String>,
    pub holder: Option<Holder>,
    pub account_type: Option<String>,
    pub id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The aggregation callback (`ResponseType: "GetAccountsDetail"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetAccountsDetail {
    pub http_status_code: Option<u16>,
    #[serde(default)]
    pub accounts: Vec<Account>,
    pub institution_name: Option<String>,
    pub login: Login,
    pub institution_id: Option<i64>,
    pub institution: Option<String>,
    pub request_id: Option<String>,
    pub tag: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Security {
    pub name: Option<String>,
    pub symbol: Option<String>,
    #[serde(rename = "Type")]
    pub security_type: Option<String>,
    pub currency: Option<String>,
    pub cusip: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Position {
    pub security: Option<Security>,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub market_value: Option<Decimal>,
    pub book_value: Option<Decimal>,
    pub currency: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvestmentTransaction {
    pub id: Option<String>,
    pub date: Option<String>,
    pub settlement_date: Option<String>,
    #[serde(rename = "Type")]
    pub transaction_type: Option<String>,
    pub description: Option<String>,
    pub security: Option<Security>,
    pub quantity: Option<Decimal>,
    pub price: Option<Decimal>,
    pub net_amount: Option<Decimal>,
    pub currency: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvestmentAccount {
    pub id: Option<String>,
    pub full_account_id: Option<String>,
    pub account_id: Option<String>,
    pub name: Option<String>,
    /// Lower case: `tfsa`, `rrsp`, `cash`, ...
    #[serde(rename = "Type")]
    pub account_type: Option<String>,
    pub registered: Option<bool>,
    /// Lower case ISO code: `cad`, `usd`, ...
    pub currency: Option<String>,
    pub cash: Option<Decimal>,
    pub account_value: Option<Decimal>,
    pub currency_value: Option<Decimal>,
    #[serde(default)]
    pub positions: Vec<Position>,
    #[serde(default)]
    pub transactions: Vec<InvestmentTransaction>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvestmentInstitution {
    pub name: Option<String>,
    pub id: Option<String>,
    #[serde(default)]
    pub accounts: Vec<InvestmentAccount>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The wealth callback (`ResponseType: "Investments"`); its inner shape is partly inferred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Investments {
    pub http_status_code: Option<u16>,
    pub institution: Option<InvestmentInstitution>,
    pub login: Option<Login>,
    pub request_id: Option<String>,
    pub tag: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
