//! The Flinks-compatible sandbox: synthetic institutions and data, the banking API under
//! `/v3/{customer_id}/BankingServices/`, and connections whose KYC, GetAccountsDetail and
//! Investments callbacks go out through the real delivery engine.

pub mod banking;
pub mod data;
pub mod institutions;
pub mod people;
pub mod seed;
pub mod wealth;
