//! Lexical rules shared by the writer and the reader: which bytes are
//! structural, which are insignificant whitespace, and when a string must be
//! quoted.

/// Opens an object or map.
pub(crate) const MAP_START: u8 = b'{';
/// Closes an object or map.
pub(crate) const MAP_END: u8 = b'}';
/// Opens a list.
pub(crate) const LIST_START: u8 = b'[';
/// Closes a list.
pub(crate) const LIST_END: u8 = b']';
/// Separates a key from its value.
pub(crate) const KEY_SEPARATOR: u8 = b':';
/// Separates items of a list or entries of an object.
pub(crate) const ITEM_SEPARATOR: u8 = b',';
/// Wraps a string that would otherwise be misread; doubled inside it.
pub(crate) const QUOTE: u8 = b'"';

/// A byte order mark, which some .NET writers put before the text.
pub(crate) const BYTE_ORDER_MARK: char = '\u{FEFF}';

/// Whitespace the reader skips around structural tokens and trims from the
/// ends of unquoted scalars. Only these four, as in pretty-printed samples;
/// other Unicode spaces are content.
pub(crate) fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// Bytes that end an unquoted value.
pub(crate) fn ends_value(byte: u8) -> bool {
    matches!(byte, ITEM_SEPARATOR | MAP_END | LIST_END)
}

/// The characters ServiceStack's `EncodeJsv` quotes for.
fn is_escape_char(ch: char) -> bool {
    matches!(ch, '"' | ':' | ',' | '{' | '}' | '[' | ']' | '\r' | '\n')
}

/// Whether `text` has to be written as `"..."` to read back unchanged.
///
/// ServiceStack's rule (empty, or any of `" : , { } [ ] CR LF`), plus two
/// cases where our reader would otherwise change the text: leading or
/// trailing whitespace (trimmed from unquoted scalars) and a leading byte
/// order mark (skipped at the start of the input).
pub(crate) fn needs_quotes(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return true;
    };
    let starts_or_ends_with_whitespace = text
        .as_bytes()
        .first()
        .is_some_and(|&byte| is_whitespace(byte))
        || text
            .as_bytes()
            .last()
            .is_some_and(|&byte| is_whitespace(byte));
    starts_or_ends_with_whitespace || first == BYTE_ORDER_MARK || text.chars().any(is_escape_char)
}

/// Appends `text` as a JSV string: bare if that reads back unchanged,
/// otherwise in quotes with every inner quote doubled.
pub(crate) fn write_string(out: &mut String, text: &str) {
    if needs_quotes(text) {
        out.push('"');
        for (index, piece) in text.split('"').enumerate() {
            if index > 0 {
                out.push_str("\"\"");
            }
            out.push_str(piece);
        }
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Trims the reader's whitespace (and only it) from both ends.
pub(crate) fn trim(text: &str) -> &str {
    text.trim_matches(|ch: char| ch.is_ascii() && is_whitespace(ch as u8))
}

/// The start of `value` for an error message: a hostile multi-megabyte
/// value must not be copied into every error.
pub(crate) fn preview(value: &str) -> String {
    const MAX_CHARS: usize = 40;
    let mut preview: String = value.chars().take(MAX_CHARS).collect();
    if preview.len() < value.len() {
        preview.push('…');
    }
    preview
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> String {
        let mut out = String::new();
        write_string(&mut out, text);
        out
    }

    #[test]
    fn plain_text_is_bare() {
        assert_eq!(written("hello world"), "hello world");
        assert_eq!(written("a\tb"), "a\tb");
        assert_eq!(written("héllo ✓"), "héllo ✓");
        assert_eq!(written("True"), "True");
        assert_eq!(written("null"), "null");
    }

    #[test]
    fn every_escape_char_forces_quotes() {
        for special in ["\"", ":", ",", "{", "}", "[", "]", "\r", "\n"] {
            let text = format!("a{special}b");
            assert!(needs_quotes(&text), "{text:?} should be quoted");
        }
    }

    #[test]
    fn inner_quotes_are_doubled() {
        assert_eq!(written(r#"say "hi""#), r#""say ""hi""""#);
        assert_eq!(written("\""), r#""""""#);
    }

    #[test]
    fn empty_and_padded_strings_are_quoted() {
        assert_eq!(written(""), r#""""#);
        assert_eq!(written(" a"), r#"" a""#);
        assert_eq!(written("a\t"), "\"a\t\"");
        assert_eq!(written("\u{FEFF}a"), "\"\u{FEFF}a\"");
    }

    #[test]
    fn trim_only_touches_jsv_whitespace() {
        assert_eq!(trim(" \t\r\na b\n"), "a b");
        assert_eq!(trim("\u{a0}x\u{a0}"), "\u{a0}x\u{a0}");
    }
}
