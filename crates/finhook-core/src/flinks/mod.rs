//! Flinks callback payloads: the three `ResponseType`s and a validating parser.
//!
//! Field names are Flinks' own (PascalCase). Every documented field that Flinks may send as
//! `null` or omit is an `Option`; money is [`rust_decimal::Decimal`] parsed from the exact
//! JSON digits; every struct keeps unknown fields in `extra` so nothing a sender adds is lost
//! when a payload is re-serialised.

mod check;
mod parse;
mod types;

pub use check::validate_callback;
pub use parse::{parse_callback, CallbackError, FieldError, ParseLimits, DEFAULT_MAX_DEPTH};
pub use types::*;

/// The `ResponseType` discriminator of a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResponseType {
    Kyc,
    GetAccountsDetail,
    Investments,
}

impl ResponseType {
    pub const ALL: [ResponseType; 3] = [Self::Kyc, Self::GetAccountsDetail, Self::Investments];

    /// The exact string Flinks puts in `ResponseType`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kyc => "KYC",
            Self::GetAccountsDetail => "GetAccountsDetail",
            Self::Investments => "Investments",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

impl std::fmt::Display for ResponseType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed callback of any of the three types.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    Kyc(Kyc),
    GetAccountsDetail(GetAccountsDetail),
    Investments(Investments),
}

/// The keys a callback is conciliated by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackKeys {
    pub response_type: ResponseType,
    pub login_id: Option<String>,
    pub request_id: Option<String>,
    pub tag: Option<String>,
}

impl Callback {
    pub fn response_type(&self) -> ResponseType {
        match self {
            Self::Kyc(_) => ResponseType::Kyc,
            Self::GetAccountsDetail(_) => ResponseType::GetAccountsDetail,
            Self::Investments(_) => ResponseType::Investments,
        }
    }

    pub fn keys(&self) -> CallbackKeys {
        let (login, request_id, tag) = match self {
            Self::Kyc(c) => (Some(&c.login), &c.request_id, &c.tag),
            Self::GetAccountsDetail(c) => (Some(&c.login), &c.request_id, &c.tag),
            Self::Investments(c) => (c.login.as_ref(), &c.request_id, &c.tag),
        };
        CallbackKeys {
            response_type: self.response_type(),
            login_id: login.map(|l| l.id.clone()),
            request_id: request_id.clone(),
            tag: tag.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
