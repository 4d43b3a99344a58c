//! Renders command results for people (tables) or programs (`--json`). Commands return
//! JSON values; only this module prints them.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::Table;
use finhook_core::text::inert;
use serde_json::Value;

/// A table column: its heading and the JSON pointer of its value in each row.
pub type Column = (&'static str, &'static str);

/// A value as table text. Strings can come from outside (a receiver's answer, a tag), so
/// they are made inert for the terminal.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => inert(s).into_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        // A rate: three decimals are plenty.
        Value::Number(n) if n.is_f64() => format!("{:.3}", n.as_f64().unwrap_or_default()),
        other => other.to_string(),
    }
}

/// Prints `rows` as a table of `columns`, or as JSON.
#[allow(clippy::print_stdout)]
pub fn list(rows: &Value, columns: &[Column], json: bool) {
    if json {
        println!("{rows}");
        return;
    }
    if rows.as_array().is_none_or(Vec::is_empty) {
        println!("(none)");
        return;
    }
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY).set_header(columns.iter().map(|(heading, _)| *heading));
    for row in rows.as_array().into_iter().flatten() {
        table.add_row(columns.iter().map(|(_, pointer)| cell(row.pointer(pointer).unwrap_or(&Value::Null))));
    }
    println!("{table}");
}

/// Prints one object as `field: value` lines, or as JSON.
#[allow(clippy::print_stdout)]
pub fn object(value: &Value, json: bool) {
    if json {
        println!("{value}");
        return;
    }
    for (key, field) in value.as_object().into_iter().flatten() {
        match field {
            Value::Object(_) | Value::Array(_)
                if !field.as_array().is_some_and(|a| a.iter().all(|v| !v.is_object())) =>
            {
                // JSON escapes C0 controls inside strings, but not DEL, C1 (CSI) or bidi
                // controls; its own line breaks are the only raw ones, so each line is made
                // inert apart.
                let pretty = serde_json::to_string_pretty(field).unwrap_or_default();
                let lines: Vec<_> = pretty.lines().map(inert).collect();
                println!("{key}: {}", lines.join("\n"))
            }
            _ => println!("{key}: {}", cell(field)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn table_cells_show_outside_text_inert() {
        let excerpt = serde_json::json!("denied\u{1b}[2J\r\nfinhook: all delivered\u{9b}0m");
        assert_eq!(cell(&excerpt), "denied\\u{1b}[2J\\r\\nfinhook: all delivered\\u{9b}0m");
        assert_eq!(cell(&serde_json::json!(["a\u{202e}b", 7])), "a\\u{202e}b, 7");
    }
}
