//! Renders command results for people (tables) or programs (`--json`). Commands return
//! JSON values; only this module prints them.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::Table;
use serde_json::Value;

/// A table column: its heading and the JSON pointer of its value in each row.
pub type Column = (&'static str, &'static str);

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
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
                println!("{key}: {}", serde_json::to_string_pretty(field).unwrap_or_default())
            }
            _ => println!("{key}: {}", cell(field)),
        }
    }
}
