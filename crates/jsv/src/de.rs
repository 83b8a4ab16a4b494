//! Reading JSV: a serde `Deserializer` over a `&str`.
//!
//! JSV is not self-describing (`True` and `42` are text until a type asks
//! for a bool or a number), so almost everything is driven by what the
//! target type asks for; only `deserialize_any` has to guess, see the crate
//! docs.

use std::borrow::Cow;

use base64::Engine as _;
use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
use serde::de::{self, DeserializeSeed, Visitor};
use serde::forward_to_deserialize_any;

use crate::MAX_DEPTH;
use crate::error::{Category, Error, Path, Result, Segment};
use crate::text::{
    self, ITEM_SEPARATOR, KEY_SEPARATOR, LIST_END, LIST_START, MAP_END, MAP_START, QUOTE,
};

pub(crate) struct Deserializer<'de> {
    input: &'de str,
    /// Byte offset of the next unread byte. Only ever moved past ASCII bytes
    /// or to the end, so it is always on a char boundary.
    pos: usize,
    depth: usize,
    path: Path,
}

impl<'de> Deserializer<'de> {
    pub(crate) fn new(input: &'de str) -> Self {
        let pos = if input.starts_with(text::BYTE_ORDER_MARK) {
            text::BYTE_ORDER_MARK.len_utf8()
        } else {
            0
        };
        Deserializer {
            input,
            pos,
            depth: 0,
            path: Path::default(),
        }
    }

    /// Checks that only whitespace follows the top-level value.
    pub(crate) fn end(&mut self) -> Result<()> {
        self.skip_whitespace();
        if self.pos < self.input.len() {
            return Err(self.syntax_error(
                format!(
                    "unexpected {} after the end of the value",
                    self.describe(self.pos)
                ),
                self.pos,
            ));
        }
        Ok(())
    }

    fn error(&self, category: Category, message: impl Into<String>, offset: usize) -> Error {
        Error::new(category, message)
            .or_offset(offset)
            .or_path(&self.path)
    }

    fn syntax_error(&self, message: impl Into<String>, offset: usize) -> Error {
        self.error(Category::Syntax, message, offset)
    }

    /// Adds the location of the value that started at `offset` to an error
    /// that came back from a visitor without one.
    pub(crate) fn locate(&self, error: Error, offset: usize) -> Error {
        error.or_offset(offset).or_path(&self.path)
    }

    /// The unread bytes.
    fn rest(&self) -> &'de [u8] {
        self.input.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(text::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Names the character at `offset` for a message: `'x'` or "end of input".
    fn describe(&self, offset: usize) -> String {
        match self
            .input
            .get(offset..)
            .and_then(|rest| rest.chars().next())
        {
            Some(ch) => format!("{ch:?}"),
            None => "end of input".to_owned(),
        }
    }

    /// A slice of the input between two offsets this reader found.
    fn slice(&self, start: usize, end: usize) -> Result<&'de str> {
        self.input.get(start..end).ok_or_else(|| {
            // Offsets are only taken at ASCII bytes, so this is a bug, but a
            // bug here must not take down a server.
            self.syntax_error("internal error: offset not on a char boundary", start)
        })
    }

    /// Whether the current value is empty: nothing but whitespace before the
    /// next `,`, `}`, `]` or the end of the input.
    fn at_empty_value(&mut self) -> bool {
        self.skip_whitespace();
        self.peek().is_none_or(text::ends_value)
    }

    fn enter(&mut self, offset: usize) -> Result<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(
                Category::Limit,
                format!("input nests deeper than {MAX_DEPTH} levels"),
                offset,
            ));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Consumes `expected` after optional whitespace, or fails with a message
    /// saying what was found instead.
    fn expect_byte(&mut self, expected: u8, context: &str) -> Result<()> {
        self.skip_whitespace();
        if self.peek() == Some(expected) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax_error(
                format!(
                    "expected '{}' {context}, found {}",
                    char::from(expected),
                    self.describe(self.pos)
                ),
                self.pos,
            ))
        }
    }

    /// Reads a quoted string; the reader is at its opening quote. A doubled
    /// quote inside stands for one quote.
    fn read_quoted(&mut self) -> Result<Cow<'de, str>> {
        let start = self.pos;
        self.pos += 1;
        let mut unescaped: Option<String> = None;
        let mut piece_start = self.pos;
        loop {
            let Some(quote) = self
                .rest()
                .iter()
                .position(|&byte| byte == QUOTE)
                .map(|found| self.pos + found)
            else {
                return Err(self.syntax_error("unterminated quoted string", start));
            };
            if self.input.as_bytes().get(quote + 1) == Some(&QUOTE) {
                // Keep the first quote of the pair, skip the second.
                let piece = self.slice(piece_start, quote + 1)?;
                unescaped.get_or_insert_with(String::new).push_str(piece);
                self.pos = quote + 2;
                piece_start = self.pos;
            } else {
                let piece = self.slice(piece_start, quote)?;
                self.pos = quote + 1;
                return Ok(match unescaped {
                    Some(mut text) => {
                        text.push_str(piece);
                        Cow::Owned(text)
                    }
                    None => Cow::Borrowed(piece),
                });
            }
        }
    }

    /// Reads an unquoted value: everything up to the next `,`, `}`, `]` or
    /// the end, with the surrounding whitespace trimmed. Like ServiceStack,
    /// `:` `{` `[` and `"` after the first character are part of the value.
    fn read_unquoted(&mut self) -> Result<&'de str> {
        let start = self.pos;
        let end = self
            .rest()
            .iter()
            .position(|&byte| text::ends_value(byte))
            .map_or(self.input.len(), |found| start + found);
        self.pos = end;
        Ok(text::trim(self.slice(start, end)?))
    }

    /// Reads a scalar value, quoted or not, for a target that wants
    /// `expected`.
    fn read_scalar(&mut self, expected: &'static str) -> Result<ScalarDeserializer<'de>> {
        self.skip_whitespace();
        let offset = self.pos;
        match self.peek() {
            Some(QUOTE) => Ok(ScalarDeserializer::new(self.read_quoted()?, true, offset)),
            Some(MAP_START) => Err(self.error(
                Category::Data,
                format!("expected {expected}, found an object"),
                offset,
            )),
            Some(LIST_START) => Err(self.error(
                Category::Data,
                format!("expected {expected}, found a list"),
                offset,
            )),
            _ => Ok(ScalarDeserializer::new(
                Cow::Borrowed(self.read_unquoted()?),
                false,
                offset,
            )),
        }
    }

    /// Reads a key and the `:` after it.
    fn read_key(&mut self) -> Result<ScalarDeserializer<'de>> {
        self.skip_whitespace();
        let offset = self.pos;
        let key = match self.peek() {
            Some(QUOTE) => ScalarDeserializer::new(self.read_quoted()?, true, offset),
            None
            | Some(MAP_START | MAP_END | LIST_START | LIST_END | ITEM_SEPARATOR | KEY_SEPARATOR) => {
                return Err(self.syntax_error(
                    format!("expected a key, found {}", self.describe(offset)),
                    offset,
                ));
            }
            Some(_) => {
                let end = self
                    .rest()
                    .iter()
                    .position(|&byte| {
                        matches!(
                            byte,
                            KEY_SEPARATOR
                                | MAP_START
                                | MAP_END
                                | LIST_START
                                | LIST_END
                                | ITEM_SEPARATOR
                                | QUOTE
                        )
                    })
                    .map_or(self.input.len(), |found| offset + found);
                self.pos = end;
                let key = text::trim(self.slice(offset, end)?);
                ScalarDeserializer::new(Cow::Borrowed(key), false, offset)
            }
        };
        self.expect_byte(KEY_SEPARATOR, "after a key")?;
        Ok(key)
    }

    /// Consumes the opening bracket of a container a target asked for.
    fn open(&mut self, opener: u8, expected: &str) -> Result<usize> {
        self.skip_whitespace();
        let offset = self.pos;
        if self.peek() != Some(opener) {
            let found = match self.peek() {
                None => "end of input".to_owned(),
                Some(MAP_START) => "an object".to_owned(),
                Some(LIST_START) => "a list".to_owned(),
                Some(byte) if text::ends_value(byte) => "an empty value".to_owned(),
                Some(_) => format!("`{}`", self.preview_bare_value()),
            };
            let category = if self.peek().is_none() {
                Category::Syntax
            } else {
                Category::Data
            };
            return Err(self.error(
                category,
                format!("expected {expected}, found {found}"),
                offset,
            ));
        }
        self.enter(offset)?;
        self.pos += 1;
        Ok(offset)
    }

    /// The next unquoted value, for an error message, without consuming it.
    fn preview_bare_value(&self) -> String {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let end = rest
            .bytes()
            .position(text::ends_value)
            .unwrap_or(rest.len());
        text::preview(text::trim(rest.get(..end).unwrap_or(rest)))
    }

    fn read_map<V: Visitor<'de>>(
        &mut self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value> {
        let start = self.open(MAP_START, "an object")?;
        let mut entries = Entries {
            de: self,
            fields,
            state: State::First,
            key: String::new(),
        };
        let value = visitor
            .visit_map(&mut entries)
            .map_err(|error| entries.de.locate(error, start))?;
        if entries.state != State::Done {
            return Err(self.error(
                Category::Data,
                "the object has more entries than the target type takes",
                self.pos,
            ));
        }
        self.leave();
        Ok(value)
    }

    fn read_list<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let start = self.open(LIST_START, "a list")?;
        let mut items = Items {
            de: self,
            state: State::First,
            index: 0,
        };
        let value = visitor
            .visit_seq(&mut items)
            .map_err(|error| items.de.locate(error, start))?;
        if items.state != State::Done {
            return Err(self.error(
                Category::Data,
                "the list has more items than the target type takes",
                self.pos,
            ));
        }
        self.leave();
        Ok(value)
    }
}

/// Scalar targets: read a scalar, then let [`ScalarDeserializer`] parse it.
macro_rules! deserialize_scalar {
    ($($method:ident => $expected:literal,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.read_scalar($expected)?.$method(visitor)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    /// The best guess for a format without types: `{` is a map, `[` a list,
    /// an empty value is unit (null), and any other scalar, quoted or not,
    /// is a string.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip_whitespace();
        match self.peek() {
            Some(MAP_START) => self.read_map(None, visitor),
            Some(LIST_START) => self.read_list(visitor),
            None => visitor.visit_unit(),
            Some(byte) if text::ends_value(byte) => visitor.visit_unit(),
            Some(_) => self.read_scalar("a value")?.deserialize_any(visitor),
        }
    }

    deserialize_scalar! {
        deserialize_bool => "True or False",
        deserialize_i8 => "an integer",
        deserialize_i16 => "an integer",
        deserialize_i32 => "an integer",
        deserialize_i64 => "an integer",
        deserialize_i128 => "an integer",
        deserialize_u8 => "an integer",
        deserialize_u16 => "an integer",
        deserialize_u32 => "an integer",
        deserialize_u64 => "an integer",
        deserialize_u128 => "an integer",
        deserialize_f32 => "a number",
        deserialize_f64 => "a number",
        deserialize_char => "a character",
        deserialize_str => "a string",
        deserialize_string => "a string",
        deserialize_bytes => "base64 text",
        deserialize_byte_buf => "base64 text",
        deserialize_identifier => "a name",
    }

    /// An empty value is `None`; anything else, even `""`, is `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.at_empty_value() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.at_empty_value() {
            visitor.visit_unit()
        } else {
            Err(self.error(
                Category::Data,
                format!("expected an empty value, found {}", self.describe(self.pos)),
                self.pos,
            ))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.read_list(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.read_list(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.read_list(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.read_map(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.read_map(Some(fields), visitor)
    }

    /// A bare name is a unit variant; `{Variant:value}` is a variant with
    /// data.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.skip_whitespace();
        if self.peek() != Some(MAP_START) {
            return self
                .read_scalar("an enum variant")?
                .visit_unit_variant(variants, visitor);
        }
        let start = self.pos;
        self.enter(start)?;
        self.pos += 1;
        let variant = self.read_key()?;
        self.path.push(Segment::Key(variant.text.to_string()));
        let result = visitor
            .visit_enum(VariantWithData {
                de: &mut *self,
                variant,
                variants,
            })
            .map_err(|error| self.locate(error, start));
        self.path.pop();
        let value = result?;
        self.expect_byte(MAP_END, "after the value of an enum variant")?;
        self.leave();
        Ok(value)
    }

    /// Skips a value however deep it nests (within the depth limit).
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Right after the opening bracket: the container may be empty.
    First,
    /// After a `,` (or, for objects, a key): an item must follow.
    Rest,
    /// The closing bracket has been read.
    Done,
}

/// The entries of an object or map.
struct Entries<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    /// A struct's field names, to match keys to them ignoring case.
    fields: Option<&'static [&'static str]>,
    state: State,
    /// The key just read, for the path of its value.
    key: String,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.state {
            State::Done => return Ok(None),
            State::First => {
                self.de.skip_whitespace();
                if self.de.peek() == Some(MAP_END) {
                    self.de.pos += 1;
                    self.state = State::Done;
                    return Ok(None);
                }
            }
            State::Rest => {}
        }
        self.state = State::Rest;
        let key = self.de.read_key()?;
        let offset = key.offset;
        self.key = key.text.to_string();
        let result = match self
            .fields
            .and_then(|fields| resolve_name(&key.text, fields))
        {
            Some(field) => seed.deserialize(BorrowedStrDeserializer::<Error>::new(field)),
            None => seed.deserialize(key),
        };
        result
            .map(Some)
            .map_err(|error| self.de.locate(error, offset))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.de
            .path
            .push(Segment::Key(std::mem::take(&mut self.key)));
        self.de.skip_whitespace();
        let offset = self.de.pos;
        let result = seed
            .deserialize(&mut *self.de)
            .map_err(|error| self.de.locate(error, offset));
        self.de.path.pop();
        let value = result?;
        self.de.skip_whitespace();
        match self.de.peek() {
            Some(ITEM_SEPARATOR) => self.de.pos += 1,
            Some(MAP_END) => {
                self.de.pos += 1;
                self.state = State::Done;
            }
            _ => {
                return Err(self.de.syntax_error(
                    format!(
                        "expected ',' or '}}' after a value in an object, found {}",
                        self.de.describe(self.de.pos)
                    ),
                    self.de.pos,
                ));
            }
        }
        Ok(value)
    }
}

/// The items of a list.
struct Items<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    state: State,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.state {
            State::Done => return Ok(None),
            State::First => {
                self.de.skip_whitespace();
                if self.de.peek() == Some(LIST_END) {
                    self.de.pos += 1;
                    self.state = State::Done;
                    return Ok(None);
                }
            }
            State::Rest => {}
        }
        self.state = State::Rest;
        self.de.path.push(Segment::Index(self.index));
        self.de.skip_whitespace();
        let offset = self.de.pos;
        let result = seed
            .deserialize(&mut *self.de)
            .map_err(|error| self.de.locate(error, offset));
        self.de.path.pop();
        let value = result?;
        self.de.skip_whitespace();
        match self.de.peek() {
            Some(ITEM_SEPARATOR) => self.de.pos += 1,
            Some(LIST_END) => {
                self.de.pos += 1;
                self.state = State::Done;
            }
            _ => {
                return Err(self.de.syntax_error(
                    format!(
                        "expected ',' or ']' after an item of a list, found {}",
                        self.de.describe(self.de.pos)
                    ),
                    self.de.pos,
                ));
            }
        }
        self.index += 1;
        Ok(Some(value))
    }
}

/// An enum variant written `{Variant:value}`.
struct VariantWithData<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    variant: ScalarDeserializer<'de>,
    variants: &'static [&'static str],
}

impl<'a, 'de> de::EnumAccess<'de> for VariantWithData<'a, 'de> {
    type Error = Error;
    type Variant = &'a mut Deserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant)> {
        let offset = self.variant.offset;
        let value = self
            .variant
            .deserialize_name(self.variants, seed)
            .map_err(|error| self.de.locate(error, offset))?;
        Ok((value, self.de))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Deserializer<'de> {
    type Error = Error;

    /// `{Variant:}`; the bare `Variant` form does not come through here.
    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.read_list(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.read_map(Some(fields), visitor)
    }
}

/// The name of the field or variant `input` stands for: the exact name if
/// there is one, else the first that matches ignoring case (ServiceStack
/// matches property names case-insensitively).
fn resolve_name(input: &str, names: &'static [&'static str]) -> Option<&'static str> {
    let folded = |text: &str| {
        text.chars()
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    names
        .iter()
        .copied()
        .find(|name| *name == input)
        .or_else(|| {
            let input = folded(input);
            names.iter().copied().find(|name| folded(name) == input)
        })
}

/// One scalar (a key, or a value that is not an object or list), already
/// unquoted, that parses itself into whatever type is asked for.
pub(crate) struct ScalarDeserializer<'de> {
    text: Cow<'de, str>,
    quoted: bool,
    /// Where the scalar starts in the input, for errors.
    offset: usize,
}

macro_rules! parse_integer {
    ($($method:ident => $visit:ident: $ty:ty,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                let value = self.text.parse::<$ty>().map_err(|error| {
                    use std::num::IntErrorKind;
                    match error.kind() {
                        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => self.error(format!(
                            "integer {} is out of range for {}",
                            self.describe(),
                            stringify!($ty)
                        )),
                        _ => self.error(format!(
                            "expected an integer ({}), found {}",
                            stringify!($ty),
                            self.describe()
                        )),
                    }
                })?;
                visitor.$visit(value)
            }
        )*
    };
}

macro_rules! parse_float {
    ($($method:ident => $visit:ident: $ty:ty,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                let value = self.text.parse::<$ty>().map_err(|_| {
                    self.error(format!("expected a number, found {}", self.describe()))
                })?;
                // Symmetric with the writer, which refuses NaN and the
                // infinities; this also catches overflow such as `1e999`.
                if !value.is_finite() {
                    return Err(self.error(format!(
                        "{} is not a finite {}",
                        self.describe(),
                        stringify!($ty)
                    )));
                }
                visitor.$visit(value)
            }
        )*
    };
}

impl<'de> ScalarDeserializer<'de> {
    fn new(text: Cow<'de, str>, quoted: bool, offset: usize) -> Self {
        ScalarDeserializer {
            text,
            quoted,
            offset,
        }
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::new(Category::Data, message).or_offset(self.offset)
    }

    /// The scalar as a message shows it.
    fn describe(&self) -> String {
        if self.text.is_empty() && !self.quoted {
            "an empty value".to_owned()
        } else {
            format!("`{}`", text::preview(&self.text))
        }
    }

    /// Gives the field or variant name this scalar stands for to `seed`.
    fn deserialize_name<S: DeserializeSeed<'de>>(
        &self,
        names: &'static [&'static str],
        seed: S,
    ) -> Result<S::Value> {
        match resolve_name(&self.text, names) {
            Some(name) => seed.deserialize(BorrowedStrDeserializer::<Error>::new(name)),
            None => match &self.text {
                Cow::Borrowed(text) => {
                    seed.deserialize(BorrowedStrDeserializer::<Error>::new(text))
                }
                Cow::Owned(text) => {
                    seed.deserialize(StringDeserializer::<Error>::new(text.clone()))
                }
            },
        }
    }

    fn visit_unit_variant<V: Visitor<'de>>(
        self,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let offset = self.offset;
        visitor
            .visit_enum(UnitVariant {
                name: self,
                variants,
            })
            .map_err(|error| error.or_offset(offset))
    }
}

impl<'de> de::Deserializer<'de> for ScalarDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.text {
            Cow::Borrowed(text) => visitor.visit_borrowed_str(text),
            Cow::Owned(text) => visitor.visit_string(text),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // .NET writes `True`/`False`; accept any case.
        if self.text.eq_ignore_ascii_case("true") {
            visitor.visit_bool(true)
        } else if self.text.eq_ignore_ascii_case("false") {
            visitor.visit_bool(false)
        } else {
            Err(self.error(format!("expected True or False, found {}", self.describe())))
        }
    }

    parse_integer! {
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
    }

    parse_float! {
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let mut chars = self.text.chars();
        match (chars.next(), chars.next()) {
            (Some(ch), None) => visitor.visit_char(ch),
            _ => Err(self.error(format!(
                "expected a single character, found {}",
                self.describe()
            ))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.text.as_bytes())
            .map_err(|error| self.error(format!("expected base64 text: {error}")))?;
        visitor.visit_byte_buf(bytes)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.text.is_empty() && !self.quoted {
            visitor.visit_unit()
        } else {
            Err(self.error(format!(
                "expected an empty value, found {}",
                self.describe()
            )))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.visit_unit_variant(variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    // A scalar is not a list or an object: the visitor reports "invalid
    // type: string ..., expected ...".
    forward_to_deserialize_any! {
        seq tuple tuple_struct map struct
    }
}

/// An enum variant written as its bare name.
struct UnitVariant<'de> {
    name: ScalarDeserializer<'de>,
    variants: &'static [&'static str],
}

impl<'de> de::EnumAccess<'de> for UnitVariant<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let value = self.name.deserialize_name(self.variants, seed)?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value> {
        Err(self.needs_data("a newtype variant"))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value> {
        Err(self.needs_data("a tuple variant"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(self.needs_data("a struct variant"))
    }
}

impl UnitVariant<'_> {
    fn needs_data(&self, kind: &str) -> Error {
        self.name.error(format!(
            "`{}` is {kind}, which is written `{{{}:...}}`, not as a bare name",
            text::preview(&self.name.text),
            text::preview(&self.name.text)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize as _;

    #[test]
    fn resolve_name_prefers_exact_match() {
        static NAMES: &[&str] = &["id", "ID", "dialState"];
        assert_eq!(resolve_name("ID", NAMES), Some("ID"));
        assert_eq!(resolve_name("Id", NAMES), Some("id"));
        assert_eq!(resolve_name("DIALSTATE", NAMES), Some("dialState"));
        assert_eq!(resolve_name("other", NAMES), None);
    }

    #[test]
    fn scalar_parses_what_the_target_asks_for() {
        let scalar = |text: &'static str| ScalarDeserializer::new(Cow::Borrowed(text), false, 0);
        assert!(bool::deserialize(scalar("tRuE")).unwrap_or(false));
        assert_eq!(i32::deserialize(scalar("-12")).ok(), Some(-12));
        assert!(u8::deserialize(scalar("256")).is_err());
    }
}
