//! The sandbox's synthetic institutions and their test users.
//!
//! Every institution takes `Greatday` / `Everyday`, as Flinks' own sandbox does. A few
//! usernames trigger documented behaviours, at every institution:
//!
//! | username | password | result |
//! |---|---|---|
//! | `Greatday` | `Everyday` | 200, a new LoginId, webhooks follow |
//! | `test_mfa` | `Everyday` | 203 with a `QuestionAndAnswer` challenge; answer `Montreal` |
//! | `test_service_unavailable` | any | 401 `RETRY_LATER` |
//! | any other, or a wrong password | | 401 `INVALID_LOGIN` |

/// What kind of accounts an institution holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstitutionKind {
    /// Chequing, savings and a credit card.
    Bank,
    /// Chequing, a line of credit and a credit card.
    CreditUnion,
    /// A cash account plus TFSA and RRSP accounts with positions; sends `Investments`.
    Investment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Institution {
    /// The code used in `Institution` fields and in `Authorize`.
    pub code: &'static str,
    /// `InstitutionName`.
    pub name: &'static str,
    /// `InstitutionId`.
    pub id: i64,
    /// The 3-digit Canadian institution number.
    pub number: &'static str,
    pub kind: InstitutionKind,
}

pub const INSTITUTIONS: [Institution; 3] = [
    Institution { code: "FlinksCapital", name: "FlinksCapital", id: 14, number: "777", kind: InstitutionKind::Bank },
    Institution {
        code: "CaisseBoreale",
        name: "Caisse populaire Boreale",
        id: 9101,
        number: "889",
        kind: InstitutionKind::CreditUnion,
    },
    Institution {
        code: "TundraWealth",
        name: "Tundra Wealth Management",
        id: 9102,
        number: "888",
        kind: InstitutionKind::Investment,
    },
];

pub const SANDBOX_PASSWORD: &str = "Everyday";
pub const USER_OK: &str = "Greatday";
pub const USER_MFA: &str = "test_mfa";
pub const USER_RETRY_LATER: &str = "test_service_unavailable";
pub const MFA_PROMPT: &str = "What city were you born in?";
pub const MFA_ANSWER: &str = "Montreal";

/// Finds an institution by code, ignoring case (Flinks' own matching is lenient too).
pub fn find(code: &str) -> Option<&'static Institution> {
    INSTITUTIONS.iter().find(|i| i.code.eq_ignore_ascii_case(code))
}
