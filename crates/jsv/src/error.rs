//! The one error type of the crate, with where the problem is.

use std::fmt::{self, Display};
use std::io;

/// Shorthand for `Result<T, jsv::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

/// What kind of problem an [`Error`] reports.
///
/// A server answering a client can map [`Category::Syntax`],
/// [`Category::Data`] and [`Category::Limit`] of a request body to
/// "400 Bad Request", and [`Category::Io`] to a failure of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Category {
    /// The text is not well-formed JSV: an unterminated string, a missing
    /// `:` or `,`, text after the value, invalid UTF-8, …
    Syntax,
    /// The text is well-formed, but does not fit the target type (a word
    /// where a number was expected, an unknown enum variant, a missing
    /// field), or a value cannot be written as JSV (a non-finite float, a
    /// map key that is not a scalar).
    Data,
    /// Nesting went deeper than [`MAX_DEPTH`](crate::MAX_DEPTH).
    Limit,
    /// The writer given to [`to_writer`](crate::to_writer) failed.
    Io,
}

/// An error from serializing or deserializing JSV.
///
/// Its message says what is wrong and where: the byte offset into the input
/// (when reading) and the path of the value, in the style
/// `members[2].role`, when the value is not the top-level one.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<ErrorImpl>);

#[derive(Debug, thiserror::Error)]
#[error("{message}{}", location(.offset, .path))]
struct ErrorImpl {
    category: Category,
    message: String,
    offset: Option<usize>,
    path: Option<String>,
    #[source]
    source: Option<io::Error>,
}

/// Renders the " (at byte N, path a.b[1])" suffix of a message.
struct Location<'a> {
    offset: Option<usize>,
    path: Option<&'a str>,
}

fn location<'a>(offset: &Option<usize>, path: &'a Option<String>) -> Location<'a> {
    Location {
        offset: *offset,
        path: path.as_deref(),
    }
}

impl Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.offset, self.path) {
            (None, None) => Ok(()),
            (Some(offset), None) => write!(f, " (at byte {offset})"),
            (None, Some(path)) => write!(f, " (at {path})"),
            (Some(offset), Some(path)) => write!(f, " (at byte {offset}, path {path})"),
        }
    }
}

impl Error {
    pub(crate) fn new(category: Category, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorImpl {
            category,
            message: message.into(),
            offset: None,
            path: None,
            source: None,
        }))
    }

    pub(crate) fn io(source: io::Error) -> Self {
        let mut error = Error::new(Category::Io, format!("failed to write JSV: {source}"));
        error.0.source = Some(source);
        error
    }

    /// What kind of problem this is.
    pub fn category(&self) -> Category {
        self.0.category
    }

    /// The message without the location suffix.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Byte offset into the input where the problem was found (reading only).
    pub fn offset(&self) -> Option<usize> {
        self.0.offset
    }

    /// Path of the value the problem is in, like `members[2].role`; `None`
    /// for the top-level value.
    pub fn path(&self) -> Option<&str> {
        self.0.path.as_deref()
    }

    /// Sets the offset unless an inner, more precise, one is already there.
    pub(crate) fn or_offset(mut self, offset: usize) -> Self {
        self.0.offset.get_or_insert(offset);
        self
    }

    /// Sets the path unless an inner, longer, one is already there. The
    /// innermost place that knows a path sees the longest one, so the first
    /// path set wins.
    pub(crate) fn or_path(mut self, path: &Path) -> Self {
        if self.0.path.is_none() && !path.is_empty() {
            self.0.path = Some(path.to_string());
        }
        self
    }
}

impl serde::de::Error for Error {
    fn custom<T: Display>(message: T) -> Self {
        Error::new(Category::Data, message.to_string())
    }
}

impl serde::ser::Error for Error {
    fn custom<T: Display>(message: T) -> Self {
        Error::new(Category::Data, message.to_string())
    }
}

/// One step of a [`Path`]: a key of an object or map, or an index in a list.
#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Where the serializer or deserializer currently is, from the top-level
/// value down, kept so errors can name it.
#[derive(Debug, Default)]
pub(crate) struct Path(Vec<Segment>);

impl Path {
    pub(crate) fn push(&mut self, segment: Segment) {
        self.0.push(segment);
    }

    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if position == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_offset_and_path() {
        let mut path = Path::default();
        path.push(Segment::Key("members".into()));
        path.push(Segment::Index(2));
        path.push(Segment::Key("role".into()));
        let error = Error::new(Category::Data, "unknown variant `Hos`")
            .or_offset(42)
            .or_path(&path);
        assert_eq!(
            error.to_string(),
            "unknown variant `Hos` (at byte 42, path members[2].role)"
        );
        assert_eq!(error.path(), Some("members[2].role"));
        assert_eq!(error.offset(), Some(42));
        assert_eq!(error.category(), Category::Data);
    }

    #[test]
    fn inner_location_wins_over_outer() {
        let mut inner = Path::default();
        inner.push(Segment::Key("a".into()));
        inner.push(Segment::Key("b".into()));
        let mut outer = Path::default();
        outer.push(Segment::Key("a".into()));
        let error = Error::new(Category::Syntax, "bad")
            .or_offset(7)
            .or_path(&inner)
            .or_offset(1)
            .or_path(&outer);
        assert_eq!(error.to_string(), "bad (at byte 7, path a.b)");
    }

    #[test]
    fn top_level_error_has_no_path() {
        let error = Error::new(Category::Syntax, "bad")
            .or_offset(0)
            .or_path(&Path::default());
        assert_eq!(error.to_string(), "bad (at byte 0)");
        assert_eq!(error.path(), None);
    }
}
