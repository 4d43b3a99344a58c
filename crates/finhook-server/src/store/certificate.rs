//! What the certificate watch found at an endpoint: its server certificate as a delivery's
//! TLS handshake sees it. Stored with the endpoint (as JSON) and shown in its answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Endpoints whose certificate expires within this are flagged (dashboard, metrics).
pub const EXPIRING_WITHIN: chrono::Duration = chrono::Duration::days(14);

/// One look at an endpoint's server certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateReport {
    pub checked_at: DateTime<Utc>,
    /// A server answered with a certificate. `false`: it could not be reached (DNS, refused,
    /// timeout), so nothing is known of its certificate yet.
    pub reached: bool,
    /// `TLS 1.3` or `TLS 1.2`; `null` when no handshake finished.
    pub tls_version: Option<String>,
    /// The chain leads to a trusted root and every certificate in it is valid now.
    pub chain_valid: bool,
    /// The certificate names the URL's host; `null` when there was no valid chain to ask.
    pub hostname_match: Option<bool>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// What is wrong, in one sentence; `null` when the certificate is valid.
    pub problem: Option<String>,
}

impl CertificateReport {
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
    }

    /// A certificate was seen, and it is not valid (or the handshake with it failed).
    pub fn is_refused(&self) -> bool {
        self.reached && self.problem.is_some()
    }

    /// Valid now, but expiring within [`EXPIRING_WITHIN`] of `now`.
    pub fn expires_soon(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|end| end - now < EXPIRING_WITHIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(expires_in_days: i64, problem: Option<&str>, reached: bool) -> (CertificateReport, DateTime<Utc>) {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("now");
        let report = CertificateReport {
            checked_at: now,
            reached,
            tls_version: Some("TLS 1.3".into()),
            chain_valid: problem.is_none(),
            hostname_match: Some(true),
            subject: Some("CN=hooks.example.com".into()),
            issuer: Some("CN=CA".into()),
            expires_at: Some(now + chrono::Duration::days(expires_in_days)),
            problem: problem.map(str::to_string),
        };
        (report, now)
    }

    #[test]
    fn a_certificate_is_flagged_within_fourteen_days_of_its_expiry() {
        let (fifteen, now) = report(15, None, true);
        assert!(!fifteen.expires_soon(now));
        let (thirteen, now) = report(13, None, true);
        assert!(thirteen.expires_soon(now));
        let (expired, now) = report(-1, None, true);
        assert!(expired.expires_soon(now));
    }

    #[test]
    fn only_a_certificate_seen_and_not_valid_is_refused() {
        assert!(!report(90, None, true).0.is_refused());
        assert!(report(90, Some("the certificate does not name h"), true).0.is_refused());
        assert!(!report(90, Some("could not check the certificate: refused"), false).0.is_refused());
    }
}
