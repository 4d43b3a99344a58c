//! The validating callback parser: raw bytes in, a typed [`Callback`] or a precise error out.

use serde::Deserialize;
use serde_json::error::Category;

use super::{Callback, CallbackKeys, ResponseType};

/// How deeply objects and arrays may nest. Real Flinks payloads nest five levels; the cap
/// protects the parser's stack and the store from hostile bodies.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Limits applied before any allocation-heavy parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub max_depth: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self { max_depth: DEFAULT_MAX_DEPTH }
    }
}

/// One schema violation, located by a JSONPath-style path such as `$.Accounts[0].Balance`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// Why a body is not an acceptable callback.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("the body is not valid JSON: {message} (line {line}, column {column})")]
    NotJson {
        message: String,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("the body must be a JSON object, the Flinks payload itself")]
    NotAnObject,
    #[error("the body nests objects and arrays deeper than {max_depth} levels")]
    TooDeep { max_depth: usize },
    #[error("the body does not match the schema of its ResponseType")]
    Invalid(Vec<FieldError>),
}

impl CallbackError {
    fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError { path: path.into(), message: message.into() }])
    }

    fn not_json(source: serde_json::Error) -> Self {
        Self::NotJson {
            message: message_without_position(&source),
            line: source.line(),
            column: source.column(),
            source,
        }
    }
}

/// Parses and validates one callback body.
///
/// The checks run cheapest first: nesting depth, JSON syntax and shape, the
/// `ResponseType` discriminator, then the full typed schema.
pub fn parse_callback(body: &[u8], limits: ParseLimits) -> Result<Callback, CallbackError> {
    let first = check_depth(body, limits.max_depth)?;
    if first != Some(b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Err(e) => Err(CallbackError::not_json(e)),
            Ok(_) => Err(CallbackError::NotAnObject),
        };
    }
    let response_type = probe_response_type(body)?;
    let callback = match response_type {
        ResponseType::Kyc => Callback::Kyc(typed(body)?),
        ResponseType::GetAccountsDetail => Callback::GetAccountsDetail(typed(body)?),
        ResponseType::Investments => Callback::Investments(typed(body)?),
    };
    check_keys(&callback.keys())?;
    Ok(callback)
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "ResponseType")]
    response_type: Option<String>,
}

pub(super) fn probe_response_type(body: &[u8]) -> Result<ResponseType, CallbackError> {
    let probe: Probe = serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data if message_without_position(&e).starts_with("duplicate field") => {
            CallbackError::invalid("$.ResponseType", "must appear once (the body has it more than once)")
        }
        Category::Data => CallbackError::invalid("$.ResponseType", "must be a string"),
        _ => CallbackError::not_json(e),
    })?;
    let expected = "expected one of \"KYC\", \"GetAccountsDetail\", \"Investments\"";
    match probe.response_type {
        None => Err(CallbackError::invalid("$.ResponseType", format!("is required; {expected}"))),
        Some(value) => ResponseType::parse(&value)
            .ok_or_else(|| CallbackError::invalid("$.ResponseType", format!("unknown value {value:?}; {expected}"))),
    }
}

fn typed<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, CallbackError> {
    // Almost every callback is valid: parse it without tracking the path, which costs on
    // every field, and parse again with tracking only to name where an invalid one breaks.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let (path, in_number) = json_path(error.path());
        let inner = error.into_inner();
        if inner.classify() != Category::Data {
            return CallbackError::not_json(inner);
        }
        let mut message = message_without_position(&inner);
        if in_number {
            // A number the decimal type could not hold; its own words ("Failed to parse")
            // say nothing of why.
            message = format!(
                "is a number finhook cannot hold exactly ({message}): amounts have at most 28 significant digits"
            );
        }
        // serde reports a missing or repeated field at its parent; name the field itself.
        let field = |prefix: &str| message.strip_prefix(prefix).and_then(|m| m.strip_suffix('`')).map(str::to_string);
        if let Some(field) = field("missing field `") {
            CallbackError::invalid(format!("{path}.{field}"), "is required")
        } else if let Some(field) = field("duplicate field `") {
            CallbackError::invalid(format!("{path}.{field}"), "must appear once (the body has it more than once)")
        } else {
            CallbackError::invalid(path, message)
        }
    })
}

/// The rules no JSON schema states: the conciliation keys must be storable and printable
/// the same way in every store (see [`crate::text`]).
pub(super) fn check_keys(keys: &CallbackKeys) -> Result<(), CallbackError> {
    use crate::text::{check_identifier, IdentifierError, MAX_LOGIN_ID_CHARS, MAX_REQUEST_ID_CHARS, MAX_TAG_CHARS};
    let checks = [
        ("$.Login.Id", keys.login_id.as_deref(), MAX_LOGIN_ID_CHARS, " (it is the LoginId)"),
        ("$.RequestId", keys.request_id.as_deref(), MAX_REQUEST_ID_CHARS, ""),
        ("$.Tag", keys.tag.as_deref(), MAX_TAG_CHARS, ""),
    ];
    let mut errors = Vec::new();
    for (path, value, max, why) in checks {
        let Some(value) = value else { continue };
        // A LoginId of spaces conciliates nothing; other keys may be blank.
        let checked = match check_identifier(value, max) {
            Ok(()) if path == "$.Login.Id" && value.trim().is_empty() => Err(IdentifierError::Empty),
            Err(IdentifierError::Empty) if path != "$.Login.Id" => Ok(()),
            other => other,
        };
        if let Err(error) = checked {
            errors.push(FieldError { path: path.to_string(), message: format!("{error}{why}") });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CallbackError::Invalid(errors))
    }
}

/// The JSON path of a serde error, and whether it lies inside a number (see below).
fn json_path(path: &serde_path_to_error::Path) -> (String, bool) {
    use serde_path_to_error::Segment;
    let mut out = String::from("$");
    let mut in_number = false;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            // serde_json's arbitrary-precision numbers travel as a map with one private key;
            // the path ends at the number itself.
            Segment::Map { key } if key.starts_with("$serde_json::private") => in_number = true,
            Segment::Map { key } => {
                out.push('.');
                out.push_str(key);
            }
            Segment::Enum { variant } => {
                out.push('.');
                out.push_str(variant);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    (out, in_number)
}

/// serde_json appends " at line L column C" to its messages; the position is reported
/// separately, so strip it from the human sentence.
fn message_without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_string(),
        None => text,
    }
}

/// Scans the raw bytes once and fails if arrays/objects nest deeper than `max_depth`.
/// Returns the first non-whitespace byte.
///
/// Written by hand because serde_json's own recursion limit is fixed at 128 and fails
/// with a syntax error that cannot be told apart from a malformed body. Inside a string it
/// jumps to the next quote or backslash with `memchr` (most of a callback's bytes are
/// strings); byte by byte, this scan was 43 % of the time validation took.
pub(super) fn check_depth(body: &[u8], max_depth: usize) -> Result<Option<u8>, CallbackError> {
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = body.get(at) {
        at += 1;
        match byte {
            b'"' => {
                // To the closing quote, stepping over each escaped character.
                loop {
                    let rest = body.get(at..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(offset) if body[at + offset] == b'\\' => at += offset + 2,
                        Some(offset) => {
                            at += offset + 1;
                            break;
                        }
                        None => return Ok(first),
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return Err(CallbackError::TooDeep { max_depth });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::{check_depth, CallbackError};

    /// The scan as it was written first, byte by byte: the reference for the fast one.
    fn reference(body: &[u8], max_depth: usize) -> Option<usize> {
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
        for &byte in body {
            if in_string {
                match (escaped, byte) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                    if depth > max_depth {
                        return None;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Some(deepest)
    }

    #[test]
    fn the_depth_scan_agrees_with_the_byte_by_byte_one_on_every_prefix() {
        let cases: [&[u8]; 6] = [
            br#"{"a": [{"b": "x\\\"[[[["}, "\\"], "c": {"d": [[1]]}}"#,
            br#"["\\", "\"", "[{", "]}", {"k\\\\": [[["v"]]]}]"#,
            b"\"\\",
            br#"{"unterminated \"[[[[ string"#,
            br#"[[[[ "\u005b" ]]]]"#,
            b"  \t{}",
        ];
        for body in cases {
            for end in 0..=body.len() {
                let prefix = &body[..end];
                for max_depth in 0..6 {
                    let fast = match check_depth(prefix, max_depth) {
                        Ok(_) => true,
                        Err(CallbackError::TooDeep { .. }) => false,
                        Err(other) => panic!("{other:?}"),
                    };
                    let slow = reference(prefix, max_depth).is_some();
                    assert_eq!(fast, slow, "{:?} at depth {max_depth}", String::from_utf8_lossy(prefix));
                }
            }
        }
    }
}
