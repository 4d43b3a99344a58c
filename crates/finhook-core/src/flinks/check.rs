//! Validation without the typed result, for ingest: the same schema as [`super::types`],
//! read into shapes that keep only the conciliation keys.
//!
//! Ingest needs to know that a body is a valid callback and what its keys are; it stores
//! the bytes as received and never uses the parsed structs. Building them cost a quarter of
//! the server's CPU per 8 KiB callback (`perf`, PostgreSQL store): every struct keeps its
//! unknown fields through `#[serde(flatten)]`, which makes serde buffer each object's fields
//! before it can read them, and every string and number of the body was copied. The shapes
//! here have the same fields with the same types, but check strings without copying them
//! and skip unknown fields instead of keeping them.
//!
//! They must accept exactly what [`parse_callback`] accepts. [`validate_callback`] only
//! trusts them to say "valid": whenever they refuse a body, the typed parser runs and its
//! answer (and its precise error) is the one returned, so a shape stricter than the types
//! costs time, never a wrong answer. A shape laxer than the types would accept a body the
//! parser refuses; the tests compare both on every field of the fixtures set to every kind
//! of JSON value, and the fuzz test compares them on mutated bodies.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::parse::{check_depth, check_keys, probe_response_type};
use super::{parse_callback, CallbackError, CallbackKeys, ParseLimits, ResponseType};

/// Validates one callback body and returns its conciliation keys: what ingest needs, at a
/// fraction of [`parse_callback`]'s cost; the same answer and the same errors.
pub fn validate_callback(body: &[u8], limits: ParseLimits) -> Result<CallbackKeys, CallbackError> {
    match quick_keys(body, limits) {
        Some(keys) => Ok(keys),
        None => parse_callback(body, limits).map(|callback| callback.keys()),
    }
}

/// The keys of a body the shapes below accept; `None` for anything else (which the typed
/// parser then judges).
pub(super) fn quick_keys(body: &[u8], limits: ParseLimits) -> Option<CallbackKeys> {
    if check_depth(body, limits.max_depth).ok()? != Some(b'{') || !strings_as_the_parser_reads_them(body) {
        return None;
    }
    let response_type = match leading_response_type(body) {
        Some(response_type) => response_type,
        None => probe_response_type(body).ok()?,
    };
    let (login, request_id, tag) = match response_type {
        ResponseType::Kyc => {
            let callback = serde_json::from_slice::<Kyc<'_>>(body).ok()?;
            (Some(callback.login), callback.request_id, callback.tag)
        }
        ResponseType::GetAccountsDetail => {
            let callback = serde_json::from_slice::<GetAccountsDetail<'_>>(body).ok()?;
            (Some(callback.login), callback.request_id, callback.tag)
        }
        ResponseType::Investments => {
            let callback = serde_json::from_slice::<Investments<'_>>(body).ok()?;
            (callback.login, callback.request_id, callback.tag)
        }
    };
    let keys = CallbackKeys {
        response_type,
        login_id: login.map(|login| login.id.into_owned()),
        request_id: owned(request_id),
        tag: owned(tag),
    };
    check_keys(&keys).ok()?;
    Some(keys)
}

/// Whether every string of the body is one that serde skips exactly when it would also
/// read it. Skipping (the unknown fields here, kept as values by the types) checks less
/// than reading: it does not check that the bytes are UTF-8, nor that a `\u` escape names a
/// character rather than half of a UTF-16 surrogate pair. So the quick check takes only
/// bodies that are UTF-8 throughout and hold no surrogate escape (emoji sent escaped, say);
/// the others go to the typed parser. (A `\\u` that is not an escape at all also sends a
/// body there: slower, never wrong.)
fn strings_as_the_parser_reads_them(body: &[u8]) -> bool {
    let surrogate = memchr::memmem::find_iter(body, br"\u")
        .any(|at| matches!(body.get(at + 2..at + 4), Some([b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F'])));
    !surrogate && std::str::from_utf8(body).is_ok()
}

/// The `ResponseType` of a body whose first member it is, as Flinks sends it (`{"ResponseType":
/// "KYC", …`), read from the first bytes instead of with a pass over the whole body; `None`
/// for any other start (an escape in the value, another first member), which the full probe
/// then reads. A second `ResponseType` further on is still refused: each shape below has the
/// field, so serde reports it as a duplicate.
fn leading_response_type(body: &[u8]) -> Option<ResponseType> {
    let skip =
        |at: usize| at + body.get(at..).unwrap_or_default().iter().take_while(|b| b.is_ascii_whitespace()).count();
    let expect = |at: usize, what: &[u8]| body.get(at..)?.starts_with(what).then_some(at + what.len());
    let at = expect(skip(0), b"{")?;
    let at = expect(skip(at), br#""ResponseType""#)?;
    let at = expect(skip(at), b":")?;
    let at = expect(skip(at), b"\"")?;
    let value = body.get(at..)?;
    let end = value.iter().position(|&b| b == b'"' || b == b'\\')?;
    (value[end] == b'"').then_some(())?;
    ResponseType::parse(std::str::from_utf8(&value[..end]).ok()?)
}

/// A JSON string, checked and not kept (`String` in the types).
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Text, E> {
                Ok(Text)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

type Opt<T> = Option<T>;

/// The keys of a callback, borrowed from the body where it has no escapes.
fn owned(value: Option<Cow<'_, str>>) -> Option<String> {
    value.map(Cow::into_owned)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Login<'a> {
    #[serde(rename = "Username")]
    _username: Opt<Text>,
    #[serde(rename = "IsScheduledRefresh")]
    _is_scheduled_refresh: Opt<bool>,
    #[serde(rename = "LastRefresh")]
    _last_refresh: Opt<Text>,
    #[serde(rename = "Type")]
    _login_type: Opt<Text>,
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Address {
    #[serde(rename = "CivicAddress")]
    _civic_address: Opt<Text>,
    #[serde(rename = "City")]
    _city: Opt<Text>,
    #[serde(rename = "Province")]
    _province: Opt<Text>,
    #[serde(rename = "PostalCode")]
    _postal_code: Opt<Text>,
    #[serde(rename = "POBox")]
    _po_box: Opt<Text>,
    #[serde(rename = "Country")]
    _country: Opt<Text>,
}

#[derive(Deserialize)]
struct Holder {
    #[serde(rename = "Name")]
    _name: Opt<Text>,
    #[serde(rename = "Address")]
    _address: Opt<Address>,
    #[serde(rename = "Email")]
    _email: Opt<Text>,
    #[serde(rename = "PhoneNumber")]
    _phone_number: Opt<Text>,
}

#[derive(Deserialize)]
struct Kyc<'a> {
    #[serde(rename = "ResponseType")]
    _response_type: Text,
    #[serde(rename = "HttpStatusCode")]
    _http_status_code: Opt<u16>,
    #[serde(rename = "Holders", default)]
    _holders: Vec<Holder>,
    #[serde(rename = "Login", borrow)]
    login: Login<'a>,
    #[serde(rename = "Institution")]
    _institution: Opt<Text>,
    #[serde(rename = "RequestId", borrow)]
    request_id: Opt<Cow<'a, str>>,
    #[serde(rename = "Tag", borrow)]
    tag: Opt<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Balance {
    #[serde(rename = "Available")]
    _available: Opt<Decimal>,
    #[serde(rename = "Current")]
    _current: Opt<Decimal>,
    #[serde(rename = "Limit")]
    _limit: Opt<Decimal>,
}

#[derive(Deserialize)]
struct Transaction {
    #[serde(rename = "Date")]
    _date: Opt<Text>,
    #[serde(rename = "Code")]
    _code: Opt<IgnoredAny>,
    #[serde(rename = "Description")]
    _description: Opt<Text>,
    #[serde(rename = "Debit")]
    _debit: Opt<Decimal>,
    #[serde(rename = "Credit")]
    _credit: Opt<Decimal>,
    #[serde(rename = "Balance")]
    _balance: Opt<Decimal>,
    #[serde(rename = "Id")]
    _id: Opt<Text>,
}

#[derive(Deserialize)]
struct Account {
    #[serde(rename = "Transactions", default)]
    _transactions: Vec<Transaction>,
    #[serde(rename = "TransitNumber")]
    _transit_number: Opt<Text>,
    #[serde(rename = "InstitutionNumber")]
    _institution_number: Opt<Text>,
    #[serde(rename = "OverdraftLimit")]
    _overdraft_limit: Opt<Decimal>,
    #[serde(rename = "Title")]
    _title: Opt<Text>,
    #[serde(rename = "AccountNumber")]
    _account_number: Opt<Text>,
    #[serde(rename = "LastFourDigits")]
    _last_four_digits: Opt<Text>,
    #[serde(rename = "Balance")]
    _balance: Opt<Balance>,
    #[serde(rename = "Category")]
    _category: Opt<Text>,
    #[serde(rename = "Type")]
    _account_type_name: Opt<Text>,
    #[serde(rename = "Currency")]
    _currency: Opt<Text>,
    #[serde(rename = "Holder")]
    _holder: Opt<Holder>,
    #[serde(rename = "AccountType")]
    _account_type: Opt<Text>,
    #[serde(rename = "Id")]
    _id: Opt<Text>,
}

#[derive(Deserialize)]
struct GetAccountsDetail<'a> {
    #[serde(rename = "ResponseType")]
    _response_type: Text,
    #[serde(rename = "HttpStatusCode")]
    _http_status_code: Opt<u16>,
    #[serde(rename = "Accounts", default)]
    _accounts: Vec<Account>,
    #[serde(rename = "InstitutionName")]
    _institution_name: Opt<Text>,
    #[serde(rename = "Login", borrow)]
    login: Login<'a>,
    #[serde(rename = "InstitutionId")]
    _institution_id: Opt<i64>,
    #[serde(rename = "Institution")]
    _institution: Opt<Text>,
    #[serde(rename = "RequestId", borrow)]
    request_id: Opt<Cow<'a, str>>,
    #[serde(rename = "Tag", borrow)]
    tag: Opt<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Security {
    #[serde(rename = "Name")]
    _name: Opt<Text>,
    #[serde(rename = "Symbol")]
    _symbol: Opt<Text>,
    #[serde(rename = "Type")]
    _security_type: Opt<Text>,
    #[serde(rename = "Currency")]
    _currency: Opt<Text>,
    #[serde(rename = "Cusip")]
    _cusip: Opt<Text>,
}

#[derive(Deserialize)]
struct Position {
    #[serde(rename = "Security")]
    _security: Opt<Security>,
    #[serde(rename = "Quantity")]
    _quantity: Opt<Decimal>,
    #[serde(rename = "Price")]
    _price: Opt<Decimal>,
    #[serde(rename = "MarketValue")]
    _market_value: Opt<Decimal>,
    #[serde(rename = "BookValue")]
    _book_value: Opt<Decimal>,
    #[serde(rename = "Currency")]
    _currency: Opt<Text>,
}

#[derive(Deserialize)]
struct InvestmentTransaction {
    #[serde(rename = "Id")]
    _id: Opt<Text>,
    #[serde(rename = "Date")]
    _date: Opt<Text>,
    #[serde(rename = "SettlementDate")]
    _settlement_date: Opt<Text>,
    #[serde(rename = "Type")]
    _transaction_type: Opt<Text>,
    #[serde(rename = "Description")]
    _description: Opt<Text>,
    #[serde(rename = "Security")]
    _security: Opt<Security>,
    #[serde(rename = "Quantity")]
    _quantity: Opt<Decimal>,
    #[serde(rename = "Price")]
    _price: Opt<Decimal>,
    #[serde(rename = "NetAmount")]
    _net_amount: Opt<Decimal>,
    #[serde(rename = "Currency")]
    _currency: Opt<Text>,
}

#[derive(Deserialize)]
struct InvestmentAccount {
    #[serde(rename = "Id")]
    _id: Opt<Text>,
    #[serde(rename = "FullAccountId")]
    _full_account_id: Opt<Text>,
    #[serde(rename = "AccountId")]
    _account_id: Opt<Text>,
    #[serde(rename = "Name")]
    _name: Opt<Text>,
    #[serde(rename = "Type")]
    _account_type: Opt<Text>,
    #[serde(rename = "Registered")]
    _registered: Opt<bool>,
    #[serde(rename = "Currency")]
    _currency: Opt<Text>,
    #[serde(rename = "Cash")]
    _cash: Opt<Decimal>,
    #[serde(rename = "AccountValue")]
    _account_value: Opt<Decimal>,
    #[serde(rename = "CurrencyValue")]
    _currency_value: Opt<Decimal>,
    #[serde(rename = "Positions", default)]
    _positions: Vec<Position>,
    #[serde(rename = "Transactions", default)]
    _transactions: Vec<InvestmentTransaction>,
}

#[derive(Deserialize)]
struct InvestmentInstitution {
    #[serde(rename = "Name")]
    _name: Opt<Text>,
    #[serde(rename = "Id")]
    _id: Opt<Text>,
    #[serde(rename = "Accounts", default)]
    _accounts: Vec<InvestmentAccount>,
}

#[derive(Deserialize)]
struct Investments<'a> {
    #[serde(rename = "ResponseType")]
    _response_type: Text,
    #[serde(rename = "HttpStatusCode")]
    _http_status_code: Opt<u16>,
    #[serde(rename = "Institution")]
    _institution: Opt<InvestmentInstitution>,
    #[serde(rename = "Login", borrow)]
    login: Opt<Login<'a>>,
    #[serde(rename = "RequestId", borrow)]
    request_id: Opt<Cow<'a, str>>,
    #[serde(rename = "Tag", borrow)]
    tag: Opt<Cow<'a, str>>,
}
