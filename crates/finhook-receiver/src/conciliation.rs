//! Conciliation: what is known about one LoginId, assembled from its callbacks in any
//! arrival order. Pure; the store feeds it rows.
//!
//! Flinks sends `KYC` early and `GetAccountsDetail` (and, for wealth, `Investments`) later,
//! all with the same `Login.Id` and `RequestId`. A refresh of the same login brings a new
//! `RequestId`. For each type, the data shown comes from the newest request that has it:
//! requests are ordered by when their first callback arrived, so a late duplicate or a
//! straggler from an older request never replaces fresher data. Every callback stays in
//! `callbacks`, the history.

use chrono::{DateTime, Utc};
use finhook_core::flinks::ResponseType;
use serde::Serialize;
use serde_json::value::RawValue;

/// One stored callback, as conciliation needs it.
#[derive(Debug, Clone)]
pub struct StoredCallback {
    /// Arrival order in the store.
    pub seq: i64,
    pub response_type: ResponseType,
    pub webhook_id: Option<String>,
    pub request_id: Option<String>,
    pub tag: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The callback body, as received (valid JSON).
    pub body: Box<RawValue>,
}

/// One line of a login's history.
#[derive(Debug, Clone, Serialize)]
pub struct CallbackEntry {
    pub response_type: &'static str,
    pub webhook_id: Option<String>,
    pub request_id: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// What `GET /logins/{login_id}` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Conciliation {
    pub login_id: String,
    /// The Tag of the newest request that carried one.
    pub tag: Option<String>,
    /// The RequestId whose callbacks arrived last.
    pub request_id: Option<String>,
    pub kyc: Option<Box<RawValue>>,
    pub accounts_detail: Option<Box<RawValue>>,
    pub investments: Option<Box<RawValue>>,
    /// Every callback of this login, in arrival order.
    pub callbacks: Vec<CallbackEntry>,
}

/// A line of `GET /logins`.
#[derive(Debug, Clone, Serialize)]
pub struct LoginSummary {
    pub login_id: String,
    pub tag: Option<String>,
    pub types: Vec<&'static str>,
    pub callbacks: usize,
    pub last_received_at: DateTime<Utc>,
}

/// Assembles a login from its callbacks (any order; duplicates are harmless).
pub fn conciliate(login_id: &str, mut callbacks: Vec<StoredCallback>) -> Conciliation {
    callbacks.sort_by_key(|c| c.seq);
    // Rank each RequestId by the arrival of its first callback; later requests rank higher.
    let mut request_rank: Vec<Option<String>> = Vec::new();
    for callback in &callbacks {
        if !request_rank.contains(&callback.request_id) {
            request_rank.push(callback.request_id.clone());
        }
    }
    let rank = |request: &Option<String>| request_rank.iter().position(|r| r == request).unwrap_or(0);
    let newest = |response_type: ResponseType| {
        callbacks
            .iter()
            .filter(|c| c.response_type == response_type)
            // Among equals (a duplicate), the earliest arrival wins: the same bytes anyway.
            .max_by_key(|c| (rank(&c.request_id), std::cmp::Reverse(c.seq)))
            .map(|c| c.body.clone())
    };
    let tag = callbacks
        .iter()
        .filter(|c| c.tag.is_some())
        .max_by_key(|c| (rank(&c.request_id), c.seq))
        .and_then(|c| c.tag.clone());
    Conciliation {
        login_id: login_id.to_string(),
        tag,
        request_id: request_rank.last().cloned().flatten(),
        kyc: newest(ResponseType::Kyc),
        accounts_detail: newest(ResponseType::GetAccountsDetail),
        investments: newest(ResponseType::Investments),
        callbacks: callbacks
            .iter()
            .map(|c| CallbackEntry {
                response_type: c.response_type.as_str(),
                webhook_id: c.webhook_id.clone(),
                request_id: c.request_id.clone(),
                received_at: c.received_at,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(seq: i64, response_type: ResponseType, request: &str, marker: &str) -> StoredCallback {
        let body = format!(r#"{{"ResponseType":"{response_type}","RequestId":"{request}","Marker":"{marker}"}}"#);
        StoredCallback {
            seq,
            response_type,
            webhook_id: Some(format!("msg_{seq}")),
            request_id: Some(request.to_string()),
            tag: Some(format!("tag-{request}")),
            received_at: DateTime::from_timestamp(1_700_000_000 + seq, 0).unwrap_or_default(),
            body: RawValue::from_string(body).unwrap_or_else(|_| unreachable!()),
        }
    }

    fn marker(raw: &Option<Box<RawValue>>) -> String {
        let value: serde_json::Value =
            serde_json::from_str(raw.as_ref().map(|r| r.get()).unwrap_or("null")).unwrap_or_default();
        value["Marker"].as_str().unwrap_or("none").to_string()
    }

    #[test]
    fn any_arrival_order_gives_the_same_picture() {
        let kyc = callback(1, ResponseType::Kyc, "r1", "kyc");
        let detail = callback(2, ResponseType::GetAccountsDetail, "r1", "detail");
        let mut detail_first = detail.clone();
        detail_first.seq = 0;
        for order in [vec![kyc.clone(), detail.clone()], vec![detail_first, kyc.clone()]] {
            let login = conciliate("L", order);
            assert_eq!(marker(&login.kyc), "kyc");
            assert_eq!(marker(&login.accounts_detail), "detail");
            assert!(login.investments.is_none());
            assert_eq!(login.tag.as_deref(), Some("tag-r1"));
            assert_eq!(login.callbacks.len(), 2);
        }
    }

    #[test]
    fn a_refresh_replaces_older_data_and_keeps_the_history() {
        let login = conciliate(
            "L",
            vec![
                callback(1, ResponseType::Kyc, "old", "old-kyc"),
                callback(2, ResponseType::GetAccountsDetail, "old", "old-detail"),
                callback(3, ResponseType::Kyc, "new", "new-kyc"),
                // A straggler of the old request arrives after the refresh started.
                callback(4, ResponseType::GetAccountsDetail, "old", "late-old-detail"),
            ],
        );
        assert_eq!(marker(&login.kyc), "new-kyc");
        assert_eq!(marker(&login.accounts_detail), "old-detail", "the newest request that has it; the first copy");
        assert_eq!(login.request_id.as_deref(), Some("new"));
        assert_eq!(login.tag.as_deref(), Some("tag-new"));
        assert_eq!(login.callbacks.len(), 4);
        let with_new_detail = conciliate(
            "L",
            vec![
                callback(1, ResponseType::GetAccountsDetail, "old", "old-detail"),
                callback(2, ResponseType::GetAccountsDetail, "new", "new-detail"),
            ],
        );
        assert_eq!(marker(&with_new_detail.accounts_detail), "new-detail");
    }
}
