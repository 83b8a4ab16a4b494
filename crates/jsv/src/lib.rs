//! A [serde] serializer and deserializer for ServiceStack's JSV format
//! (`Content-Type: text/jsv`), in the style of `serde_json`.
//!
//! JSV ("JSON + CSV") is the text format of ServiceStack.Text's
//! `TypeSerializer`: JSON's shape without JSON's quotes. ServiceStack
//! services (Evo Voice among them) speak it alongside JSON. No maintained
//! Rust crate does, hence this one.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! #[serde(rename_all = "camelCase")]
//! struct Member {
//!     display_name: String,
//!     muted: bool,
//!     role: Option<String>,
//! }
//!
//! let member = Member { display_name: "Ada, Countess".into(), muted: false, role: None };
//! let text = jsv::to_string(&member)?;
//! assert_eq!(text, r#"{displayName:"Ada, Countess",muted:False}"#);
//! assert_eq!(jsv::from_str::<Member>(&text)?, member);
//!
//! // Keys match field names ignoring case, as in ServiceStack.
//! let read: Member = jsv::from_str("{ DisplayName: Ada , MUTED: true }")?;
//! assert_eq!(read.display_name, "Ada");
//! # Ok::<(), jsv::Error>(())
//! ```
//!
//! # The format
//!
//! These rules follow ServiceStack.Text (`JsvTypeSerializer`, `JsWriter`,
//! `EncodeJsv`):
//!
//! - **Objects and maps** are `{Key:Value,Key2:Value2}`, **lists** are
//!   `[a,b,c]`; empty ones are `{}` and `[]`. Keys are not quoted; a key is
//!   escaped by the same rule as a string.
//! - **Strings** are written bare unless they are empty or contain any of
//!   `"` `:` `,` `{` `}` `[` `]`, CR or LF. Then they are wrapped in `"…"`
//!   with every inner `"` doubled: `say "hi", bye` is written
//!   `"say ""hi"", bye"`, and the empty string is `""`.
//! - **Null** struct fields (`None`) are left out.
//! - **Booleans** are written `True` and `False`, as .NET prints them, and
//!   read in any case (`true`, `TRUE`, `False`).
//! - **Numbers** are in the invariant culture: `.` as the decimal point, no
//!   thousands separators.
//! - **Enums** with unit variants are written as the variant's (renamed)
//!   name.
//! - **Reading** matches keys to struct fields ignoring case, skips unknown
//!   keys together with their whole value, and accepts whitespace (space,
//!   tab, CR, LF) around every structural token, so the pretty-printed
//!   samples of ServiceStack's metadata pages parse.
//!
//! # Decisions
//!
//! Where ServiceStack leaves a choice open, or its choice would lose data,
//! this crate decides as follows. The guiding rule is that
//! `from_str(&to_string(&x)?)? == x` for every value of a type made of the
//! supported parts (with the one documented exception of a list holding a
//! single `None`).
//!
//! - **Whitespace in strings.** Whitespace around a bare scalar is
//!   insignificant (the reader trims it, so `accountId: String` reads
//!   `"String"`). A string that starts or ends with whitespace is therefore
//!   quoted when written (`" padded "`), and so is one that starts with a
//!   byte order mark, which the reader skips at the start of the input.
//!   Inside quotes, everything is literal.
//! - **Bare text is lenient.** A bare value runs to the next `,`, `}`, `]` or
//!   the end of the input; a `:`, `{`, `[` or `"` after its first character
//!   is part of it (`{time:12:30}` reads `time` as `12:30`), as in
//!   ServiceStack. The writer still quotes all of those.
//! - **`None` inside a list or as a map value** is written as an empty value:
//!   `[a,,b]` for `[Some("a"), None, Some("b")]` and `{k:}` for a map entry
//!   whose value is `None`. An empty value reads back as `None` for an
//!   `Option` (while `""` reads as `Some("")`), so lists and maps of options
//!   keep their length and keys. (ServiceStack itself drops null map
//!   entries; it reads `{k:}` as null.) The exception: a list holding only
//!   one `None` is written `[]`, which reads back as the empty list, exactly
//!   as in ServiceStack. `Some(None)` in an `Option<Option<T>>` is written
//!   like `None`, as in `serde_json`.
//! - **An empty value for a non-`Option` target**: a `String` reads it as
//!   `""` (ServiceStack would give null); numbers, booleans, enums, lists
//!   and objects refuse it.
//! - **Unit** `()`, **unit structs** and `serde_json::Value::Null` are written
//!   as an empty value, like `None`; a struct field of unit type stays
//!   present as `field:`.
//! - **Enum variants with data** are written as a one-entry object keyed by
//!   the variant name, like `serde_json`'s external tagging:
//!   `{Variant:value}` for a newtype variant, `{Variant:[a,b]}` for a tuple
//!   variant and `{Variant:{field:value}}` for a struct variant. Variant
//!   names are read ignoring case, like keys.
//! - **Tuples, tuple structs** are lists; **newtype structs** are their
//!   inner value.
//! - **Bytes** (`serialize_bytes`, e.g. through `serde_bytes`) are standard
//!   base64 with padding, as .NET's `Convert.ToBase64String` writes for a
//!   `byte[]`. A plain `Vec<u8>` goes through serde as a list of numbers.
//! - **Floats** are written in the shortest form that reads back to the same
//!   value (Rust's `Display`), switching to exponent form (`1e300`,
//!   `1.5e-7`) below 1e-5 and from 1e16 on, which .NET reads. **Non-finite
//!   floats** (NaN, ±infinity) are an error in both directions: JSV has no
//!   agreed spelling for them (.NET prints culture-dependent text), and a
//!   silent `0` would corrupt data. Text that overflows (`1e999`) is an
//!   error too.
//! - **Map keys** may be any scalar: strings, numbers, booleans, chars and
//!   unit enum variants. Lists, objects, options and variants with data as
//!   keys are an error.
//! - **`deserialize_any`** (for `serde_json::Value`, untagged and internally
//!   tagged enums, `#[serde(flatten)]`): JSV does not say what type a scalar
//!   is, so the best effort is: `{` is a map, `[` is a list, an empty value
//!   is unit (null), and every other scalar, quoted or bare, is a string.
//!   `True` and `42` therefore become strings there; an untagged enum should
//!   have a `String` case or parse the string itself. Case-insensitive keys
//!   do not apply through `#[serde(flatten)]`, which reads a plain map.
//! - **Limits.** Both directions refuse to nest deeper than [`MAX_DEPTH`]
//!   (128) levels of objects and lists, so hostile input cannot overflow
//!   the stack. Text after the top-level value (other than whitespace) is an
//!   error, and so are tuples and structs given more items than they take.
//! - **Errors** say what is wrong and where: the byte offset into the input
//!   and the path of the value (`members[2].role`); see [`Error`].
//! - **Writing** builds the text in memory ([`to_writer`] then writes it
//!   once), because a `None` field is only known to be `None` after its key
//!   is down, and is then taken back.
//! - **A leading byte order mark** on the input is skipped.
//!
//! # Pretty printing
//!
//! [`to_string_pretty`] lays the text out as ServiceStack's
//! `JsvFormatter.Format` does: a newline after each `{`, `[` and `,`, a tab
//! per level of indent, `key: value`, and an object or list that is a value
//! on its own line under its key. ServiceStack's metadata pages print the
//! same text with the tabs stripped. The reader accepts both layouts.

mod de;
mod error;
mod ser;
mod text;

use std::io;

use serde::{Deserialize, Serialize};

pub use error::{Category, Error, Result};

/// How deep objects and lists may nest, when writing and when reading.
pub const MAX_DEPTH: usize = 128;

/// Writes `value` as compact JSV.
///
/// # Errors
///
/// When `value` holds a non-finite float or a map key that is not a scalar,
/// nests deeper than [`MAX_DEPTH`], or its `Serialize` impl fails.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> Result<String> {
    write_string(value, ser::Layout::Compact)
}

/// Writes `value` as JSV laid out like ServiceStack's `JsvFormatter`: one
/// entry per line, tab-indented.
///
/// # Errors
///
/// As [`to_string`].
pub fn to_string_pretty<T: ?Sized + Serialize>(value: &T) -> Result<String> {
    write_string(value, ser::Layout::Pretty)
}

/// Writes `value` as compact JSV to `writer`.
///
/// # Errors
///
/// As [`to_string`], and when `writer` fails ([`Category::Io`]).
pub fn to_writer<W: io::Write, T: ?Sized + Serialize>(mut writer: W, value: &T) -> Result<()> {
    let text = to_string(value)?;
    writer.write_all(text.as_bytes()).map_err(Error::io)
}

fn write_string<T: ?Sized + Serialize>(value: &T, layout: ser::Layout) -> Result<String> {
    let mut serializer = ser::Serializer::new(layout);
    value.serialize(&mut serializer)?;
    Ok(serializer.into_string())
}

/// Reads a `T` from JSV text.
///
/// # Errors
///
/// When the text is not well-formed JSV ([`Category::Syntax`]), does not fit
/// `T` ([`Category::Data`]), or nests deeper than [`MAX_DEPTH`]
/// ([`Category::Limit`]). The error says at which byte and in which value.
pub fn from_str<'de, T: Deserialize<'de>>(input: &'de str) -> Result<T> {
    let mut deserializer = de::Deserializer::new(input);
    let value = T::deserialize(&mut deserializer).map_err(|error| deserializer.locate(error, 0))?;
    deserializer.end()?;
    Ok(value)
}

/// Reads a `T` from JSV bytes, which must be UTF-8 (a request body, say).
///
/// # Errors
///
/// As [`from_str`], and when the bytes are not UTF-8 (the offset is that of
/// the first invalid byte).
pub fn from_slice<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T> {
    let text = std::str::from_utf8(input).map_err(|error| {
        Error::new(Category::Syntax, "input is not valid UTF-8").or_offset(error.valid_up_to())
    })?;
    from_str(text)
}
