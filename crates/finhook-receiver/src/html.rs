//! A small read-only HTML view of the conciliation, for people at a browser.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::server::Receiver;

const STYLE: &str =
    "body{font:14px system-ui,sans-serif;margin:2rem;color:#1b1f24}table{border-collapse:collapse;margin:1rem 0}\
td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left}th{background:#f6f8fa}code{font-size:13px}";

/// Escapes text for HTML element and attribute content. Hand-written because it is five
/// replacements; a template engine would be the heavier dependency.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    ))
}

fn failure() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "the receiver store failed").into_response()
}

pub async fn index(State(receiver): State<Receiver>, _access: crate::pages::PageAccess) -> Response {
    let Ok(logins) = receiver.store().logins().await else { return failure() };
    let mut rows = String::new();
    for login in &logins {
        rows.push_str(&format!(
            "<tr><td><a href=\"/view/{id}\"><code>{id}</code></a></td><td>{tag}</td><td>{types}</td><td>{n}</td><td>{last}</td></tr>",
            id = escape(&login.login_id),
            tag = escape(login.tag.as_deref().unwrap_or("")),
            types = escape(&login.types.join(", ")),
            n = login.callbacks,
            last = login.last_received_at.format("%Y-%m-%d %H:%M:%S UTC"),
        ));
    }
    let body = format!(
        "<h1>finhook listen</h1><p>{} login(s). JSON: <a href=\"/logins\">/logins</a>.</p>\
         <table><tr><th>LoginId</th><th>Tag</th><th>Callbacks received</th><th>Count</th><th>Last</th></tr>{rows}</table>",
        logins.len()
    );
    page("finhook listen", &body).into_response()
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

pub async fn login(
    State(receiver): State<Receiver>,
    _access: crate::pages::PageAccess,
    Path(login_id): Path<String>,
) -> Response {
    let login = match receiver.store().login(&login_id).await {
        Ok(Some(login)) => login,
        Ok(None) => {
            return (StatusCode::NOT_FOUND, page("Not found", "<p>No callback names this LoginId.</p>")).into_response()
        }
        Err(_) => return failure(),
    };
    let parse = |raw: &Option<Box<serde_json::value::RawValue>>| -> Value {
        raw.as_ref().and_then(|r| serde_json::from_str(r.get()).ok()).unwrap_or(Value::Null)
    };
    let mut body = format!(
        "<p><a href=\"/\">all logins</a></p><h1>LoginId <code>{}</code></h1><p>Tag: {} · RequestId: <code>{}</code> · <a href=\"/logins/{}\">JSON</a></p>",
        escape(&login.login_id),
        escape(login.tag.as_deref().unwrap_or("-")),
        escape(login.request_id.as_deref().unwrap_or("-")),
        escape(&login.login_id),
    );
    let kyc = parse(&login.kyc);
    body.push_str("<h2>Holders (KYC)</h2><table><tr><th>Name</th><th>Email</th><th>City</th></tr>");
    for holder in kyc["Holders"].as_array().into_iter().flatten() {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            text(&holder["Name"]),
            text(&holder["Email"]),
            text(&holder["Address"]["City"])
        ));
    }
    body.push_str("</table>");
    let detail = parse(&login.accounts_detail);
    body.push_str("<h2>Accounts (GetAccountsDetail)</h2><table><tr><th>Title</th><th>Type</th><th>Currency</th><th>Current balance</th><th>Transactions</th></tr>");
    for account in detail["Accounts"].as_array().into_iter().flatten() {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text(&account["Title"]),
            text(&account["Type"]),
            text(&account["Currency"]),
            text(&account["Balance"]["Current"]),
            account["Transactions"].as_array().map_or(0, Vec::len)
        ));
    }
    body.push_str("</table>");
    let investments = parse(&login.investments);
    body.push_str("<h2>Investment accounts (Investments)</h2><table><tr><th>Name</th><th>Type</th><th>Value</th><th>Positions</th></tr>");
    for account in investments["Institution"]["Accounts"].as_array().into_iter().flatten() {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            text(&account["Name"]),
            text(&account["Type"]),
            text(&account["AccountValue"]),
            account["Positions"].as_array().map_or(0, Vec::len)
        ));
    }
    body.push_str("</table><h2>Callbacks received</h2><table><tr><th>Received</th><th>ResponseType</th><th>RequestId</th><th>webhook-id</th></tr>");
    for callback in &login.callbacks {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            callback.received_at.format("%Y-%m-%d %H:%M:%S UTC"),
            callback.response_type,
            escape(callback.request_id.as_deref().unwrap_or("-")),
            escape(callback.webhook_id.as_deref().unwrap_or("-"))
        ));
    }
    body.push_str("</table>");
    page(&format!("LoginId {}", login.login_id), &body).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(super::escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }
}
