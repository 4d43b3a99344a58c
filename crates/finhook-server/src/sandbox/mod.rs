//! The Flinks-compatible sandbox: synthetic institutions and data, the banking API under
//! `/v3/{customer_id}/BankingServices/`, and connections whose KYC, GetAccountsDetail and
//! Investments callbacks go out through the real delivery engine.

pub mod api;
pub mod banking;
pub mod data;
pub mod flow;
pub mod institutions;
pub mod people;
pub mod seed;
pub mod trigger;
pub mod wealth;
