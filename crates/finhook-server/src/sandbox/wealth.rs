//! Synthetic investment accounts (TFSA and RRSP) with positions and recent activity, for
//! the `Investments` callback. Market values are quantity × price to the cent, and an
//! account's value is its cash plus its positions.

use chrono::{Duration, NaiveDate};
use finhook_core::flinks::{InvestmentAccount, InvestmentTransaction, Position, Security};
use rust_decimal::Decimal;

use super::seed::Seeded;

/// (name, symbol, type, price range in dollars)
const SECURITIES: [(&str, &str, &str, i64, i64); 6] = [
    ("Boreal Broad Market Index ETF", "BBMX", "etf", 28, 36),
    ("Cascadia Rail Holdings Ltd", "CSRH", "equity", 50, 66),
    ("Tundra Balanced Growth Fund Series F", "TDN204", "mutualfund", 12, 16),
    ("Laurentian Green Energy Corp", "LGEC", "equity", 18, 27),
    ("Maritime Bond Index ETF", "MBIX", "etf", 19, 22),
    ("Prairie Dividend Leaders ETF", "PDLX", "etf", 31, 39),
];

/// (account key, name, Flinks type)
pub const REGISTERED: [(&str, &str, &str); 2] =
    [("tfsa", "Self-Directed TFSA", "tfsa"), ("rrsp", "Self-Directed RRSP", "rrsp")];

fn security(index: usize) -> Security {
    let (name, symbol, kind, _, _) = SECURITIES[index];
    Security {
        name: Some(name.to_string()),
        symbol: Some(symbol.to_string()),
        security_type: Some(kind.to_string()),
        currency: Some("cad".to_string()),
        cusip: None,
        extra: Default::default(),
    }
}

/// The registered accounts of a login, with the Flinks account Ids `account_id` gives.
pub fn accounts(login_id: &str, as_of: NaiveDate, account_id: impl Fn(&str) -> String) -> Vec<InvestmentAccount> {
    REGISTERED
        .iter()
        .map(|(key, name, kind)| {
            let mut rng = Seeded::new(&["wealth", login_id, key]);
            let number = rng.digits(7);
            let mut positions = Vec::new();
            let mut transactions = Vec::new();
            let held: Vec<usize> = (0..SECURITIES.len()).filter(|_| rng.chance(0.5)).take(4).collect();
            let held = if held.is_empty() { vec![0] } else { held };
            for (n, &index) in held.iter().enumerate() {
                let (_, _, _, low, high) = SECURITIES[index];
                let price = rng.money(low, high);
                let quantity = Decimal::from(rng.int(5, 220));
                let market_value = (quantity * price).round_dp(2);
                let book_value = (market_value * Decimal::new(rng.int(85, 105), 2)).round_dp(2);
                positions.push(Position {
                    security: Some(security(index)),
                    quantity: Some(quantity),
                    price: Some(price),
                    market_value: Some(market_value),
                    book_value: Some(book_value),
                    currency: Some("cad".to_string()),
                    extra: Default::default(),
                });
                let bought = Decimal::from(rng.int(1, 12));
                let buy_price = rng.money(low, high);
                let date = (as_of - Duration::days(rng.int(3, 80))).format("%Y-%m-%d").to_string();
                transactions.push(InvestmentTransaction {
                    id: Some(Seeded::new(&["wealth-tx", login_id, key, &n.to_string()]).guid()),
                    date: Some(date.clone()),
                    settlement_date: Some(date),
                    transaction_type: Some("buy".to_string()),
                    description: Some(format!("BUY {bought} {} @ {buy_price}", SECURITIES[index].1)),
                    security: Some(security(index)),
                    quantity: Some(bought),
                    price: Some(buy_price),
                    net_amount: Some(-(bought * buy_price).round_dp(2)),
                    currency: Some("cad".to_string()),
                    extra: Default::default(),
                });
            }
            let contribution = rng.money(200, 1500);
            let date = (as_of - Duration::days(rng.int(1, 85))).format("%Y-%m-%d").to_string();
            transactions.push(InvestmentTransaction {
                id: Some(Seeded::new(&["wealth-contrib", login_id, key]).guid()),
                date: Some(date.clone()),
                settlement_date: Some(date),
                transaction_type: Some("contribution".to_string()),
                description: Some("CONTRIBUTION".to_string()),
                security: None,
                quantity: None,
                price: None,
                net_amount: Some(contribution),
                currency: Some("cad".to_string()),
                extra: Default::default(),
            });
            transactions.sort_by(|a, b| b.date.cmp(&a.date));
            let cash = rng.money(20, 900);
            let value = cash + positions.iter().filter_map(|p| p.market_value).sum::<Decimal>();
            InvestmentAccount {
                id: Some(account_id(key)),
                full_account_id: Some(format!("{name} {}-{} CAD", &number[..2], &number[2..])),
                account_id: Some(number),
                name: Some(name.to_string()),
                account_type: Some(kind.to_string()),
                registered: Some(true),
                currency: Some("cad".to_string()),
                cash: Some(cash),
                account_value: Some(value),
                currency_value: Some(value),
                positions,
                transactions,
                extra: Default::default(),
            }
        })
        .collect()
}
