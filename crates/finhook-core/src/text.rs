//! Text rules shared by every store: which identifiers may be stored, and how free text that
//! came from outside (a receiver's answer, an error message) is made storable.
//!
//! Both databases must accept and refuse exactly the same inputs. PostgreSQL refuses a NUL
//! in `TEXT` and a btree index entry of more than about 2,700 bytes; SQLite takes both. So
//! the rules live here, are applied at ingest (a `422` naming the path) and before an
//! attempt is recorded, and neither store ever sees text the other would refuse.

/// The longest `Login.Id` accepted (Flinks sends a 36-character UUID).
pub const MAX_LOGIN_ID_CHARS: usize = 256;
/// The longest `RequestId` accepted (Flinks sends a 36-character UUID).
pub const MAX_REQUEST_ID_CHARS: usize = 256;
/// The longest `Tag` accepted (the customer's own label, passed through Flinks Connect).
pub const MAX_TAG_CHARS: usize = 1024;

/// Why an identifier cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters (it has {len})")]
    TooLong { max: usize, len: usize },
    #[error("must not contain control characters (U+{code:04X} at character {index})")]
    Control { code: u32, index: usize },
}

/// Checks an identifier that is indexed, conciliated on and printed: not empty, at most
/// `max_chars` characters, and no control characters (C0, DEL, C1: NUL, line breaks and
/// terminal escapes among them).
pub fn check_identifier(value: &str, max_chars: usize) -> Result<(), IdentifierError> {
    if value.is_empty() {
        return Err(IdentifierError::Empty);
    }
    let mut len = 0;
    for (index, c) in value.chars().enumerate() {
        if c.is_control() {
            return Err(IdentifierError::Control { code: u32::from(c), index });
        }
        len += 1;
    }
    if len > max_chars {
        return Err(IdentifierError::TooLong { max: max_chars, len });
    }
    Ok(())
}

/// Makes bytes from outside storable as text in any store: invalid UTF-8 sequences and NUL
/// become U+FFFD. Lossy on purpose: the text is for people reading an attempt's record;
/// callers keep the raw byte count beside it.
pub fn storable_text(raw: &[u8]) -> String {
    storable_str(&String::from_utf8_lossy(raw))
}

/// [`storable_text`] for text that is already UTF-8 but may hold NUL.
pub fn storable_str(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// Text from outside made inert for a terminal or a log line: control characters (C0 with
/// line breaks and ESC, DEL, C1 with CSI) and the bidirectional formatting characters
/// become escapes (`\n`, `\u{1b}`, `\u{202e}`); everything else stays as it is. Written by
/// hand because `str::escape_debug` also escapes quotes and backslashes, which would
/// garble ordinary text such as an error message.
pub fn inert(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || is_bidi_control(c);
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The characters that reorder how a line is displayed (Unicode's bidi controls): they can
/// make a terminal show text in another order than it was sent.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_is_made_inert_for_terminals_and_keeps_ordinary_text() {
        assert_eq!(inert(r#"refused: "C:\x" é"#), r#"refused: "C:\x" é"#);
        assert!(matches!(inert("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(inert("a\r\nb\tc"), "a\\r\\nb\\tc");
        assert_eq!(inert("\u{1b}]0;x\u{7}\0\u{9b}2J\u{7f}"), "\\u{1b}]0;x\\u{7}\\u{0}\\u{9b}2J\\u{7f}");
        assert_eq!(inert("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    #[test]
    fn identifiers_are_checked_for_length_and_control_characters() {
        assert_eq!(check_identifier("c91cd0cf-7b4c-490b-8fd5-45e1c4cd451e", 256), Ok(()));
        assert_eq!(check_identifier("éé", 2), Ok(()));
        assert_eq!(check_identifier("ééé", 2), Err(IdentifierError::TooLong { max: 2, len: 3 }));
        assert_eq!(check_identifier("", 2), Err(IdentifierError::Empty));
        assert_eq!(check_identifier("a\0b", 9), Err(IdentifierError::Control { code: 0, index: 1 }));
        assert_eq!(check_identifier("a\u{1b}[2J", 9), Err(IdentifierError::Control { code: 0x1b, index: 1 }));
        assert_eq!(check_identifier("a\u{85}", 9), Err(IdentifierError::Control { code: 0x85, index: 1 }));
        assert_eq!(check_identifier("line\r", 9), Err(IdentifierError::Control { code: 0x0d, index: 4 }));
    }

    #[test]
    fn outside_text_is_made_storable() {
        assert_eq!(storable_text(b"ok"), "ok");
        assert_eq!(storable_text(b"a\0b"), "a\u{FFFD}b");
        assert_eq!(storable_text(&[b'x', 0xff, 0xfe]), "x\u{FFFD}\u{FFFD}");
        // UTF-16LE "OK": every other byte is NUL.
        assert_eq!(storable_text(&[b'O', 0, b'K', 0]), "O\u{FFFD}K\u{FFFD}");
        assert!(!storable_str("nul\0inside").contains('\0'));
    }
}
