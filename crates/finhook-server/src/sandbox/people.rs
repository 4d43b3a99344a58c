//! Synthetic account holders: Canadian names and addresses, reserved e-mail domains and
//! fictional 555-01xx phone numbers, so no generated value can belong to a real person.

use finhook_core::flinks::{Address, Holder};

use super::seed::Seeded;

const FIRST: [&str; 16] = [
    "Marguerite",
    "Olivier",
    "Amara",
    "Jean-Philippe",
    "Priya",
    "Mathieu",
    "Chloe",
    "Wei",
    "Nadia",
    "Samuel",
    "Elodie",
    "Kwame",
    "Isabelle",
    "Ravi",
    "Genevieve",
    "Liam",
];
const LAST: [&str; 16] = [
    "Tremblay",
    "Okonkwo",
    "Gagnon",
    "Singh",
    "Bouchard",
    "Nguyen",
    "Roy",
    "MacDonald",
    "Cote",
    "Haddad",
    "Pelletier",
    "Fraser",
    "Lavoie",
    "Chen",
    "Morin",
    "Boateng",
];
const STREETS: [&str; 8] = [
    "Rue des Erables",
    "Avenue du Parc",
    "Chemin Sainte-Foy",
    "Main Street",
    "Rue Principale",
    "Maple Avenue",
    "Boulevard Laurier",
    "King Street West",
];
/// (city, province, first three characters of the postal code, area code)
const CITIES: [(&str, &str, &str, &str); 8] = [
    ("Montreal", "QC", "H2X", "514"),
    ("Quebec", "QC", "G1R", "418"),
    ("Sherbrooke", "QC", "J1H", "819"),
    ("Toronto", "ON", "M5V", "416"),
    ("Ottawa", "ON", "K1P", "613"),
    ("Halifax", "NS", "B3H", "902"),
    ("Calgary", "AB", "T2P", "403"),
    ("Vancouver", "BC", "V6B", "604"),
];

/// The holder of every account of one LoginId.
pub fn holder(login_id: &str) -> Holder {
    let mut rng = Seeded::new(&["holder", login_id]);
    let first = *rng.pick(&FIRST);
    let last = *rng.pick(&LAST);
    let (city, province, postal, area) = *rng.pick(&CITIES);
    let civic = format!("{} {}", rng.int(10, 9999), rng.pick(&STREETS));
    let unit = if rng.chance(0.3) { format!(" App {}", rng.int(1, 40)) } else { String::new() };
    let postal_code = format!("{postal} {}{}{}", rng.int(0, 9), char::from(b'A' + rng.int(0, 25) as u8), rng.int(0, 9));
    let email_user = format!("{}.{}", first.to_lowercase(), last.to_lowercase()).replace('-', "");
    Holder {
        name: Some(format!("{first} {last}")),
        address: Some(Address {
            civic_address: Some(format!("{civic}{unit}")),
            city: Some(city.to_string()),
            province: Some(province.to_string()),
            postal_code: Some(postal_code),
            po_box: None,
            country: Some("CA".to_string()),
            extra: Default::default(),
        }),
        email: Some(format!("{email_user}@example.com")),
        phone_number: Some(format!("({area}) 555-01{:02}", rng.int(0, 99))),
        extra: Default::default(),
    }
}
