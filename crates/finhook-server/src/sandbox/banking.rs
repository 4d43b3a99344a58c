//! Synthetic bank accounts and a year of realistic Canadian activity: payroll deposits,
//! rent by Interac e-Transfer, groceries, bill payments, card purchases and payments,
//! line-of-credit interest, and the occasional NSF fee.
//!
//! Each day's transactions are drawn from a seed of (LoginId, account, date), and running
//! balances are computed backwards from the balance "as of" the request over a fixed
//! 365-day window. So the 90-day view is exactly the newest part of the 365-day view, and
//! the same LoginId always shows the same history.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use finhook_core::flinks::{Account, Balance, Holder, Transaction};
use rust_decimal::Decimal;

use super::institutions::{Institution, InstitutionKind};
use super::seed::Seeded;

/// How an account's balance moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Credits add to the balance (chequing, savings).
    Deposit,
    /// Debits add to the amount owed (credit cards, lines of credit).
    Owed,
    /// A registered investment account: a balance, no banking transactions.
    Registered,
}

/// One account an institution opens for every login.
#[derive(Debug, Clone, Copy)]
pub struct AccountPlan {
    pub key: &'static str,
    pub title: &'static str,
    pub category: &'static str,
    pub type_name: &'static str,
    pub flow: Flow,
}

const fn plan(
    key: &'static str,
    title: &'static str,
    category: &'static str,
    type_name: &'static str,
    flow: Flow,
) -> AccountPlan {
    AccountPlan { key, title, category, type_name, flow }
}

pub fn plans(kind: InstitutionKind) -> &'static [AccountPlan] {
    const BANK: [AccountPlan; 3] = [
        plan("chequing", "Everyday Chequing", "Operations", "Chequing", Flow::Deposit),
        plan("savings", "High Interest Savings", "Operations", "Savings", Flow::Deposit),
        plan("card", "Capital Visa Infinite", "Credits", "CreditCard", Flow::Owed),
    ];
    const CREDIT_UNION: [AccountPlan; 3] = [
        plan("chequing", "Compte cheques Boreal", "Operations", "Chequing", Flow::Deposit),
        plan("loc", "Marge de credit personnelle", "Credits", "LineOfCredit", Flow::Owed),
        plan("card", "Mastercard Boreale", "Credits", "CreditCard", Flow::Owed),
    ];
    const INVESTMENT: [AccountPlan; 3] = [
        plan("chequing", "Cash Management Account", "Operations", "CashManagement", Flow::Deposit),
        plan("tfsa", "Self-Directed TFSA", "Products", "TFSA", Flow::Registered),
        plan("rrsp", "Self-Directed RRSP", "Products", "RRSP", Flow::Registered),
    ];
    match kind {
        InstitutionKind::Bank => &BANK,
        InstitutionKind::CreditUnion => &CREDIT_UNION,
        InstitutionKind::Investment => &INVESTMENT,
    }
}

/// What GetAccountsDetail was asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DetailOptions {
    pub with_account_identity: bool,
    pub with_transactions: bool,
    pub with_balance: bool,
    /// 90 or 365.
    pub days: u32,
    /// Only these account Ids, when given.
    pub accounts_filter: Option<Vec<String>>,
}

impl DetailOptions {
    /// What the GetAccountsDetail webhook carries: everything, 90 days.
    pub fn webhook() -> Self {
        Self {
            with_account_identity: true,
            with_transactions: true,
            with_balance: true,
            days: 90,
            accounts_filter: None,
        }
    }
}

/// The per-person habits that make a history look lived-in.
#[derive(Debug)]
struct Profile {
    employer: &'static str,
    pay: Decimal,
    pay_offset: i64,
    rent: Decimal,
    grocer_day: Weekday,
    telecom: &'static str,
    monthly_fee: Decimal,
    bounces: bool,
}

fn profile(login_id: &str) -> Profile {
    const EMPLOYERS: [&str; 6] = [
        "CLINIQUE VETO ESTRIE",
        "NORTHWIND LOGISTICS",
        "HOPITAL SAINT-LUC",
        "MAPLEBYTE SOFTWARE",
        "VILLE DE QUEBEC",
        "BOREAL FOODS",
    ];
    const TELECOMS: [&str; 3] = ["BELL CANADA", "VIDEOTRON", "ROGERS"];
    let mut rng = Seeded::new(&["profile", login_id]);
    // Drawn one by one, in this order, so that a profile never changes between versions.
    let employer = *rng.pick(&EMPLOYERS);
    let pay = rng.money(1600, 2900);
    let pay_offset = rng.int(0, 13);
    // Rent is a quarter to a third of take-home pay, rounded to $10.
    let rent = (pay * Decimal::new(217, 2) * Decimal::new(rng.int(25, 36), 2) / Decimal::TEN).round() * Decimal::TEN;
    let grocer_day = *rng.pick(&[Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun]);
    let telecom = *rng.pick(&TELECOMS);
    let monthly_fee = *rng.pick(&[Decimal::new(495, 2), Decimal::new(1095, 2), Decimal::new(1695, 2)]);
    let bounces = rng.chance(0.35);
    Profile { employer, pay, pay_offset, rent, grocer_day, telecom, monthly_fee, bounces }
}

/// A transaction before balances: a description and its signed effect.
#[derive(Debug)]
struct Event {
    description: String,
    debit: Option<Decimal>,
    credit: Option<Decimal>,
}

fn debit(description: impl Into<String>, amount: Decimal) -> Event {
    Event { description: description.into(), debit: Some(amount), credit: None }
}

fn credit(description: impl Into<String>, amount: Decimal) -> Event {
    Event { description: description.into(), debit: None, credit: Some(amount) }
}

fn french(institution: &Institution) -> bool {
    institution.kind == InstitutionKind::CreditUnion
}

/// The transactions of one account on one day.
fn day_events(
    institution: &Institution,
    account: &AccountPlan,
    p: &Profile,
    login_id: &str,
    date: NaiveDate,
) -> Vec<Event> {
    let mut rng = Seeded::new(&["day", login_id, account.key, &date.to_string()]);
    let fr = french(institution);
    let t = |en: &str, frc: &str| if fr { frc.to_string() } else { en.to_string() };
    let mut events = Vec::new();
    let day = date.day();
    match (account.key, account.flow) {
        ("chequing", _) => {
            if (date.num_days_from_ce() as i64 + p.pay_offset) % 14 == 0 {
                let pay = p.pay + rng.money(0, 40);
                events.push(credit(
                    t(&format!("PAYROLL DEPOSIT - {}", p.employer), &format!("DEPOT DIRECT - PAIE {}", p.employer)),
                    pay,
                ));
            }
            if day == 1 {
                events.push(debit(t("INTERAC E-TRANSFER SENT - RENT", "INTERAC VIREMENT ENVOYE - LOYER"), p.rent));
            }
            if day == 3 {
                events.push(debit(t("MONTHLY ACCOUNT FEE", "FRAIS MENSUELS DU FORFAIT"), p.monthly_fee));
            }
            if day == 12 {
                events.push(debit(t("BILL PAYMENT - HYDRO", "PAIEMENT FACTURE - HYDRO-QUEBEC"), rng.money(62, 148)));
            }
            if day == 18 {
                events.push(debit(
                    format!("{} - {}", t("BILL PAYMENT", "PAIEMENT FACTURE"), p.telecom),
                    rng.money(78, 135),
                ));
            }
            if day == 24 && institution.kind != InstitutionKind::Investment {
                events.push(debit(
                    t("PAYMENT - CREDIT CARD", "PAIEMENT CARTE DE CREDIT"),
                    card_statement(login_id, date),
                ));
            }
            if day == 16 {
                let saved = monthly_saving(p, institution.kind, login_id, date);
                let description = match institution.kind {
                    InstitutionKind::Bank => "TRANSFER TO SAVINGS",
                    InstitutionKind::CreditUnion => "VIREMENT VERS EPARGNE A TERME",
                    InstitutionKind::Investment => "PRE-AUTHORIZED CONTRIBUTION - TFSA",
                };
                events.push(debit(description, saved));
            }
            if date.weekday() == p.grocer_day {
                let store = *rng.pick(&["METRO", "IGA", "MAXI", "PROVIGO", "LOBLAWS", "SUPER C"]);
                events.push(debit(
                    format!("{} - {store} #{}", t("POS PURCHASE", "ACHAT PDV"), rng.int(100, 999)),
                    rng.money(48, 210),
                ));
            }
            if rng.chance(0.22) {
                let merchant =
                    *rng.pick(&["TIM HORTONS", "PETRO-CANADA", "SAQ", "PHARMAPRIX", "STM TRANSIT", "RESTO CHEZ LEO"]);
                events.push(debit(format!("{} - {merchant}", t("POS PURCHASE", "ACHAT PDV")), rng.money(4, 85)));
            }
            if rng.chance(0.06) {
                let from = *rng.pick(&["M. GAGNON", "A. SINGH", "L. ROY", "K. BOATENG"]);
                events.push(credit(
                    format!("{} - {from}", t("INTERAC E-TRANSFER RECEIVED", "INTERAC VIREMENT RECU")),
                    rng.money(20, 300),
                ));
            }
            if rng.chance(0.04) {
                events.push(debit(t("INTERAC E-TRANSFER SENT", "INTERAC VIREMENT ENVOYE"), rng.money(20, 200)));
            }
            if p.bounces && day == 15 && date.month().is_multiple_of(4) {
                events.push(debit(
                    t("NSF FEE - RETURNED PRE-AUTHORIZED DEBIT", "FRAIS EFFET SANS PROVISION (NSF)"),
                    Decimal::new(4800, 2),
                ));
            }
        }
        ("savings", _) => {
            if day == 16 {
                events.push(credit("TRANSFER FROM CHEQUING", monthly_saving(p, institution.kind, login_id, date)));
            }
            if date.succ_opt().is_some_and(|next| next.day() == 1) {
                events.push(credit("INTEREST", rng.money(1, 9)));
            }
        }
        ("card", _) => {
            events.extend(card_purchases(login_id, date));
            if day == 24 {
                events.push(credit(t("PAYMENT - THANK YOU", "PAIEMENT - MERCI"), card_statement(login_id, date)));
            }
        }
        ("loc", _) => {
            if day == 5 {
                events.push(credit("PAIEMENT MARGE DE CREDIT", rng.money(150, 400)));
            }
            if day == 28 {
                events.push(debit("INTERETS MARGE DE CREDIT", rng.money(18, 75)));
            }
            if rng.chance(0.01) {
                events.push(debit("AVANCE DE FONDS", rng.money(300, 1500)));
            }
        }
        _ => {}
    }
    events
}

/// What a person moves out of chequing each month (to savings or investments): roughly
/// what is left of the month's pay after the expected spending, so that balances hover
/// instead of drifting over the year. The same amount shows on both sides of the transfer.
fn monthly_saving(p: &Profile, kind: InstitutionKind, login_id: &str, date: NaiveDate) -> Decimal {
    // Monthly averages of the draws in `day_events` and `card_purchases`.
    let income = p.pay * Decimal::new(217, 2) + Decimal::from(20 + 288);
    let card = if kind == InstitutionKind::Investment { Decimal::ZERO } else { Decimal::from(1229) };
    let spending = p.rent + Decimal::from(555 + 294 + 211 + 132) + p.monthly_fee + card;
    let noise = Seeded::new(&["saving", login_id, &date.format("%Y-%m").to_string()]).money(-80, 80);
    (income - spending + noise).max(Decimal::from(50)).round_dp(2)
}

/// Card purchases of one day: about one every other day.
fn card_purchases(login_id: &str, date: NaiveDate) -> Vec<Event> {
    let mut rng = Seeded::new(&["card", login_id, &date.to_string()]);
    let mut events = Vec::new();
    for chance in [0.45, 0.1] {
        if rng.chance(chance) {
            let merchant =
                *rng.pick(&["AMAZON.CA", "COSTCO WHOLESALE", "UBER EATS", "NETFLIX.COM", "CANADIAN TIRE", "ESSO"]);
            events.push(debit(merchant, rng.money(9, 140)));
        }
    }
    events
}

/// The card statement paid in full on `date`: the purchases of the 30 days before it.
fn card_statement(login_id: &str, date: NaiveDate) -> Decimal {
    let total: Decimal = (1..=30)
        .flat_map(|back| card_purchases(login_id, date - Duration::days(back)))
        .filter_map(|event| event.debit)
        .sum();
    total.max(Decimal::new(2500, 2))
}

/// The balance as of the request: a plausible amount per account type.
fn closing_balance(login_id: &str, account: &AccountPlan) -> Decimal {
    let mut rng = Seeded::new(&["closing", login_id, account.key]);
    match account.key {
        "chequing" => rng.money(600, 4200),
        "savings" => rng.money(2000, 16000),
        "card" => rng.money(150, 2400),
        "loc" => rng.money(2500, 12000),
        _ => rng.money(1000, 30000),
    }
}

/// The 365 days before `as_of` (inclusive), newest first, with running balances that add up.
fn history(
    institution: &Institution,
    account: &AccountPlan,
    login_id: &str,
    as_of: NaiveDate,
) -> (Decimal, Vec<Transaction>) {
    let p = profile(login_id);
    let mut rows: Vec<(NaiveDate, Event)> = Vec::new();
    for back in 0..365 {
        let date = as_of - Duration::days(back);
        // Reverse within the day so the whole list runs newest first.
        let mut day = day_events(institution, account, &p, login_id, date);
        day.reverse();
        rows.extend(day.into_iter().map(|e| (date, e)));
    }
    let effect = |e: &Event| {
        let (d, c) = (e.debit.unwrap_or_default(), e.credit.unwrap_or_default());
        if account.flow == Flow::Owed {
            d - c
        } else {
            c - d
        }
    };
    // Walk back from the closing balance; then lift the whole year if it ever dipped too low.
    let mut closing = closing_balance(login_id, account);
    let mut after = Vec::with_capacity(rows.len());
    let mut running = closing;
    for (_, event) in &rows {
        after.push(running);
        running -= effect(event);
    }
    let floor = if account.flow == Flow::Owed { Decimal::ZERO } else { Decimal::new(-25000, 2) };
    let lowest = after.iter().copied().chain([running]).min().unwrap_or_default();
    let lift = if lowest < floor { (floor - lowest).ceil() } else { Decimal::ZERO };
    closing += lift;
    let transactions = rows
        .into_iter()
        .zip(after)
        .enumerate()
        .map(|(index, ((date, event), balance))| Transaction {
            date: Some(date.format("%Y-%m-%d").to_string()),
            code: None,
            description: Some(event.description),
            debit: event.debit,
            credit: event.credit,
            balance: Some(balance + lift),
            id: Some(Seeded::new(&["tx", login_id, account.key, &date.to_string(), &index.to_string()]).guid()),
            extra: Default::default(),
        })
        .collect();
    (closing, transactions)
}

/// The stable Flinks account Id of one planned account.
pub fn account_id(login_id: &str, account: &AccountPlan) -> String {
    Seeded::new(&["account", login_id, account.key]).guid()
}

/// The accounts of a login as GetAccountsDetail shows them. `registered_values` gives the
/// value of registered accounts (from the investment data) by account key.
pub fn accounts(
    institution: &Institution,
    login_id: &str,
    holder: &Holder,
    as_of: NaiveDate,
    options: &DetailOptions,
    registered_value: impl Fn(&str) -> Option<Decimal>,
) -> Vec<Account> {
    let mut out = Vec::new();
    for account in plans(institution.kind) {
        let id = account_id(login_id, account);
        if options.accounts_filter.as_ref().is_some_and(|only| !only.contains(&id)) {
            continue;
        }
        let mut identity = Seeded::new(&["identity", login_id, account.key]);
        let number = identity.digits(7);
        let transit = identity.digits(5);
        let (current, mut transactions) = match account.flow {
            Flow::Registered => (registered_value(account.key).unwrap_or_default(), Vec::new()),
            _ => history(institution, account, login_id, as_of),
        };
        let oldest = as_of - Duration::days(i64::from(options.days) - 1);
        transactions.retain(|t| {
            t.date.as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()).is_some_and(|d| d >= oldest)
        });
        let (overdraft, limit) = match account.type_name {
            "Chequing" | "CashManagement" => (Some(Decimal::new(50000, 2)), None),
            "CreditCard" => (None, Some(Decimal::new(Seeded::new(&["limit", login_id]).int(5, 20) * 100000, 2))),
            "LineOfCredit" => (None, Some(Decimal::new(2_000_000, 2))),
            _ => (None, None),
        };
        let available = match (account.flow, overdraft, limit) {
            (Flow::Deposit, Some(od), _) => Some(current + od),
            (Flow::Owed, _, Some(limit)) => Some(limit - current),
            _ => Some(current),
        };
        let with_identity = options.with_account_identity;
        out.push(Account {
            transactions: if options.with_transactions { std::mem::take(&mut transactions) } else { Vec::new() },
            transit_number: with_identity.then(|| transit.clone()),
            institution_number: with_identity.then(|| institution.number.to_string()),
            overdraft_limit: overdraft,
            title: Some(account.title.to_string()),
            account_number: with_identity.then(|| number.clone()),
            last_four_digits: (account.type_name == "CreditCard").then(|| number[number.len() - 4..].to_string()),
            balance: options.with_balance.then(|| Balance {
                available,
                current: Some(current),
                limit,
                extra: Default::default(),
            }),
            category: Some(account.category.to_string()),
            account_type_name: Some(account.type_name.to_string()),
            currency: Some("CAD".to_string()),
            holder: Some(holder.clone()),
            account_type: Some("Personal".to_string()),
            id: Some(id),
            extra: Default::default(),
        });
    }
    out
}
