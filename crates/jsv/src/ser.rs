//! Writing JSV: a serde `Serializer` that builds the text in a `String`.
//!
//! The text is built in memory rather than streamed because a struct field
//! is only known to be `None` (and so left out) after its value has been
//! asked to serialize itself: the writer puts the key down, and takes it
//! back if nothing followed.

use std::fmt::{self, Write as _};

use base64::Engine as _;
use serde::ser::{self, Impossible, Serialize};

use crate::MAX_DEPTH;
use crate::error::{Category, Error, Path, Result, Segment};
use crate::text;

/// Whether serializing a value left text behind. A struct leaves out a
/// field whose value was `None` ([`Written::Absent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    Absent,
    Present,
}

/// Layout of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// No whitespace at all: what goes over the wire.
    Compact,
    /// ServiceStack's `JsvFormatter.Format` layout: a newline after every
    /// `{`, `[` and `,`, one tab of indent per level, `key: value`, and a
    /// container that is a value on its own line under its key.
    Pretty,
}

pub(crate) struct Serializer {
    out: String,
    layout: Layout,
    depth: usize,
    path: Path,
    /// A key and its `:` were just written, and the value decides how to lay
    /// itself out after them (pretty layout only).
    after_key: bool,
}

impl Serializer {
    pub(crate) fn new(layout: Layout) -> Self {
        Serializer {
            out: String::new(),
            layout,
            depth: 0,
            path: Path::default(),
            after_key: false,
        }
    }

    pub(crate) fn into_string(self) -> String {
        self.out
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::new(Category::Data, message).or_path(&self.path)
    }

    fn pretty(&self) -> bool {
        self.layout == Layout::Pretty
    }

    /// Starts a new line at the current indent (pretty layout only).
    fn new_line(&mut self) {
        if self.pretty() {
            self.out.push('\n');
            for _ in 0..self.depth {
                self.out.push('\t');
            }
        }
    }

    /// Separates a scalar from the key before it: `key: value`.
    fn begin_scalar(&mut self) {
        if std::mem::take(&mut self.after_key) && self.pretty() {
            self.out.push(' ');
        }
    }

    fn write_bare(&mut self, text: &str) -> Result<Written> {
        self.begin_scalar();
        self.out.push_str(text);
        Ok(Written::Present)
    }

    fn write_string(&mut self, text: &str) -> Result<Written> {
        self.begin_scalar();
        text::write_string(&mut self.out, text);
        Ok(Written::Present)
    }

    fn write_display(&mut self, value: impl fmt::Display) -> Result<Written> {
        self.begin_scalar();
        write!(self.out, "{value}").map_err(|_| self.error("failed to format a number"))?;
        Ok(Written::Present)
    }

    /// Writes the opening bracket of an object or list.
    fn open(&mut self, opener: char) -> Result<Frame> {
        if self.depth >= MAX_DEPTH {
            return Err(Error::new(
                Category::Limit,
                format!("value nests deeper than {MAX_DEPTH} levels"),
            )
            .or_path(&self.path));
        }
        let after_key = std::mem::take(&mut self.after_key);
        let mark = self.out.len();
        if after_key {
            // A container value goes on its own line under its key.
            self.new_line();
        }
        self.out.push(opener);
        self.depth += 1;
        Ok(Frame {
            mark,
            after_key,
            opener,
            items: 0,
        })
    }

    /// Writes the closing bracket matching `frame`.
    fn close(&mut self, frame: &Frame, closer: char) {
        self.depth -= 1;
        if frame.items == 0 {
            if frame.after_key && self.pretty() {
                // An empty container stays on the key's line: `key: []`.
                self.out.truncate(frame.mark);
                self.out.push(' ');
                self.out.push(frame.opener);
            }
        } else {
            self.new_line();
        }
        self.out.push(closer);
    }

    /// Writes what goes before an item of a list or an entry of an object.
    fn begin_item(&mut self, frame: &Frame) {
        if frame.items > 0 {
            self.out.push(',');
        }
        self.new_line();
    }

    /// Writes `key:` and leaves the value to follow.
    fn write_key(&mut self, key: &str) {
        text::write_string(&mut self.out, key);
        self.out.push(':');
        self.after_key = true;
    }

    /// Opens `{Variant:` around the data of an enum variant.
    fn open_variant(&mut self, variant: &'static str) -> Result<Frame> {
        let mut frame = self.open('{')?;
        self.begin_item(&frame);
        self.write_key(variant);
        self.path.push(Segment::Key(variant.to_owned()));
        frame.items = 1;
        Ok(frame)
    }

    fn close_variant(&mut self, frame: &Frame) {
        self.path.pop();
        self.close(frame, '}');
    }

    fn compound(&mut self, opener: char, variant: Option<Frame>) -> Result<Compound<'_>> {
        let frame = self.open(opener)?;
        Ok(Compound {
            ser: self,
            frame,
            variant,
            pending_key: String::new(),
        })
    }
}

/// Where an open container started and how many items it has so far.
struct Frame {
    /// Length of the output before the container; an empty container after a
    /// key is rewritten from here.
    mark: usize,
    after_key: bool,
    opener: char,
    items: usize,
}

/// Floats in the shortest text that reads back to the same value, in the
/// invariant culture; exponent form only for very large or small magnitudes,
/// where plain digits would run to hundreds of characters.
fn float_text<F: fmt::Display + fmt::LowerExp>(value: F, magnitude: f64) -> String {
    if magnitude == 0.0 || (1e-5..1e16).contains(&magnitude) {
        value.to_string()
    } else {
        format!("{value:e}")
    }
}

fn bool_text(value: bool) -> &'static str {
    // .NET's Boolean.ToString(), which ServiceStack writes.
    if value { "True" } else { "False" }
}

impl<'a> ser::Serializer for &'a mut Serializer {
    type Ok = Written;
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, value: bool) -> Result<Written> {
        self.write_bare(bool_text(value))
    }

    fn serialize_i8(self, value: i8) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_i16(self, value: i16) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_i32(self, value: i32) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_i64(self, value: i64) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_i128(self, value: i128) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_u8(self, value: u8) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_u16(self, value: u16) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_u32(self, value: u32) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_u64(self, value: u64) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_u128(self, value: u128) -> Result<Written> {
        self.write_display(value)
    }

    fn serialize_f32(self, value: f32) -> Result<Written> {
        if !value.is_finite() {
            return Err(self.error(format!("cannot write the non-finite float {value} as JSV")));
        }
        let text = float_text(value, f64::from(value).abs());
        self.write_bare(&text)
    }

    fn serialize_f64(self, value: f64) -> Result<Written> {
        if !value.is_finite() {
            return Err(self.error(format!("cannot write the non-finite float {value} as JSV")));
        }
        let text = float_text(value, value.abs());
        self.write_bare(&text)
    }

    fn serialize_char(self, value: char) -> Result<Written> {
        self.write_string(value.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, value: &str) -> Result<Written> {
        self.write_string(value)
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<Written> {
        // .NET's Convert.ToBase64String, which ServiceStack writes for byte[].
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        self.write_string(&encoded)
    }

    fn serialize_none(self) -> Result<Written> {
        self.after_key = false;
        Ok(Written::Absent)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Written> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Written> {
        // Nothing, like `None`, but a struct keeps the field (`key:`).
        self.after_key = false;
        Ok(Written::Present)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Written> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Written> {
        self.write_string(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Written> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Written> {
        let frame = self.open_variant(variant)?;
        value
            .serialize(&mut *self)
            .map_err(|error| error.or_path(&self.path))?;
        self.close_variant(&frame);
        Ok(Written::Present)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.compound('[', None)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a>> {
        self.compound('[', None)
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>> {
        self.compound('[', None)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        let outer = self.open_variant(variant)?;
        self.compound('[', Some(outer))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.compound('{', None)
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Compound<'a>> {
        self.compound('{', None)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        let outer = self.open_variant(variant)?;
        self.compound('{', Some(outer))
    }
}

/// An open list, object or map being filled item by item.
pub(crate) struct Compound<'a> {
    ser: &'a mut Serializer,
    frame: Frame,
    /// The `{Variant:` wrapped around this container, for tuple and struct
    /// variants.
    variant: Option<Frame>,
    /// The text of the map key just written, for error paths.
    pending_key: String,
}

impl Compound<'_> {
    fn element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.ser.begin_item(&self.frame);
        self.ser.path.push(Segment::Index(self.frame.items));
        let result = value
            .serialize(&mut *self.ser)
            .map_err(|error| error.or_path(&self.ser.path));
        self.ser.path.pop();
        result?;
        self.frame.items += 1;
        Ok(())
    }

    fn field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<()> {
        let mark = self.ser.out.len();
        self.ser.begin_item(&self.frame);
        self.ser.write_key(key);
        self.ser.path.push(Segment::Key(key.to_owned()));
        let result = value
            .serialize(&mut *self.ser)
            .map_err(|error| error.or_path(&self.ser.path));
        self.ser.path.pop();
        match result? {
            // A null property is left out, as ServiceStack does.
            Written::Absent => self.ser.out.truncate(mark),
            Written::Present => self.frame.items += 1,
        }
        Ok(())
    }

    fn end(self, closer: char) -> Result<Written> {
        self.ser.close(&self.frame, closer);
        if let Some(outer) = &self.variant {
            self.ser.close_variant(outer);
        }
        Ok(Written::Present)
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = Written;
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<Written> {
        Compound::end(self, ']')
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = Written;
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<Written> {
        Compound::end(self, ']')
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = Written;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<Written> {
        Compound::end(self, ']')
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = Written;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<Written> {
        Compound::end(self, ']')
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = Written;
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<()> {
        self.ser.begin_item(&self.frame);
        let key_start = self.ser.out.len();
        key.serialize(MapKeySerializer { ser: self.ser })?;
        self.pending_key = self.ser.out.get(key_start..).unwrap_or_default().to_owned();
        self.ser.out.push(':');
        self.ser.after_key = true;
        self.frame.items += 1;
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<()> {
        // A `None` value stays as an empty value (`key:`) so that maps of
        // options read back with the same keys.
        self.ser
            .path
            .push(Segment::Key(std::mem::take(&mut self.pending_key)));
        let result = value
            .serialize(&mut *self.ser)
            .map_err(|error| error.or_path(&self.ser.path));
        self.ser.path.pop();
        result.map(drop)
    }

    fn end(self) -> Result<Written> {
        Compound::end(self, '}')
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = Written;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<Written> {
        Compound::end(self, '}')
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = Written;
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }

    fn end(self) -> Result<Written> {
        Compound::end(self, '}')
    }
}

/// Writes a map key: any scalar, escaped like a string.
struct MapKeySerializer<'a> {
    ser: &'a mut Serializer,
}

impl MapKeySerializer<'_> {
    fn unsupported(&self, what: &str) -> Error {
        self.ser.error(format!(
            "a map key must be a string, number, bool, char or unit enum variant, not {what}"
        ))
    }

    fn write(self, text: &str) -> Result<()> {
        text::write_string(&mut self.ser.out, text);
        Ok(())
    }

    fn write_display(self, value: impl fmt::Display) -> Result<()> {
        let text = value.to_string();
        self.write(&text)
    }
}

impl ser::Serializer for MapKeySerializer<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, value: bool) -> Result<()> {
        self.write(bool_text(value))
    }

    fn serialize_i8(self, value: i8) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_i16(self, value: i16) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_i32(self, value: i32) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_i64(self, value: i64) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_i128(self, value: i128) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_u8(self, value: u8) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_u16(self, value: u16) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_u32(self, value: u32) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_u64(self, value: u64) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_u128(self, value: u128) -> Result<()> {
        self.write_display(value)
    }

    fn serialize_f32(self, value: f32) -> Result<()> {
        if !value.is_finite() {
            return Err(self.unsupported("a non-finite float"));
        }
        let text = float_text(value, f64::from(value).abs());
        self.write(&text)
    }

    fn serialize_f64(self, value: f64) -> Result<()> {
        if !value.is_finite() {
            return Err(self.unsupported("a non-finite float"));
        }
        let text = float_text(value, value.abs());
        self.write(&text)
    }

    fn serialize_char(self, value: char) -> Result<()> {
        self.write(value.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, value: &str) -> Result<()> {
        self.write(value)
    }

    fn serialize_bytes(self, _value: &[u8]) -> Result<()> {
        Err(self.unsupported("bytes"))
    }

    fn serialize_none(self) -> Result<()> {
        Err(self.unsupported("None"))
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        Err(self.unsupported("unit"))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        Err(self.unsupported("a unit struct"))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.write(variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<()> {
        Err(self.unsupported("an enum variant with data"))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(self.unsupported("a list"))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(self.unsupported("a tuple"))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(self.unsupported("a tuple struct"))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(self.unsupported("an enum variant with data"))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(self.unsupported("a map"))
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(self.unsupported("a struct"))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(self.unsupported("an enum variant with data"))
    }
}
