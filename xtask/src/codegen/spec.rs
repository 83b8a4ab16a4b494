//! The spec: loading `spec/*.toml`, checking it, and the validated model the emitters read.
//!
//! Every error names the file, the line and column, and what is wrong; nothing here panics on a
//! malformed spec.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    ops::Range,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use toml::Spanned;

/// A problem in a spec file, located.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// All spec files, checked together (types may refer to types of other files).
#[derive(Debug)]
pub struct Spec {
    pub modules: Vec<Module>,
}

#[derive(Debug)]
pub struct Module {
    /// The file the module came from, relative to the repository root (`spec/gws_voice.toml`).
    pub source: String,
    /// Rust module and `.proto` file name.
    pub name: String,
    pub doc: String,
    pub enums: Vec<Enum>,
    pub structs: Vec<Struct>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    String,
    Int,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// An unlisted value is kept as `Other(..)`.
    Keep,
    /// An unlisted value is an input error.
    Reject,
}

#[derive(Debug)]
pub struct Enum {
    pub name: String,
    pub doc: String,
    pub repr: Repr,
    pub unknown: Unknown,
    pub unknown_why: String,
    pub values: Vec<EnumValue>,
}

impl Enum {
    /// Whether protobuf carries this enum as a proto `enum` (otherwise as its wire string).
    pub fn is_proto_enum(&self) -> bool {
        self.repr == Repr::Int || self.unknown == Unknown::Reject
    }

    pub fn default_value(&self) -> Option<&EnumValue> {
        self.values.iter().find(|v| v.default)
    }

    /// Whether the protobuf enum needs a synthetic `*_UNSPECIFIED = 0` (proto3 wants a zero).
    pub fn needs_unspecified(&self) -> bool {
        self.is_proto_enum() && !self.values.iter().any(|v| v.proto == 0)
    }
}

#[derive(Debug)]
pub enum WireValue {
    Str(String),
    Int(i32),
}

#[derive(Debug)]
pub struct EnumValue {
    pub wire: WireValue,
    /// Rust variant name (and the suffix of the protobuf value name).
    pub name: String,
    pub proto: i32,
    pub default: bool,
    pub doc: String,
}

#[derive(Debug)]
pub struct Struct {
    pub name: String,
    pub doc: String,
    pub pascal_case_aliases: bool,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Required,
    Optional,
    Nullable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Body,
    Path,
    Query,
}

#[derive(Debug)]
pub struct Field {
    /// The exact wire name.
    pub name: String,
    /// The Rust field name (snake_case, `r#` for keywords).
    pub rust_name: String,
    /// The protobuf field name (snake_case, never a raw identifier).
    pub proto_name: String,
    pub ty: Type,
    pub presence: Presence,
    pub default: bool,
    pub proto: u32,
    pub location: Location,
    /// Other names accepted on input (never written).
    pub aliases: Vec<String>,
    pub doc: String,
}

impl Field {
    /// Whether the Rust type is wrapped in `Option`.
    pub fn is_option(&self) -> bool {
        self.presence != Presence::Required && !self.ty.is_collection()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    String,
    Bool,
    I32,
    I64,
    F64,
    Json,
    List(Box<Type>),
    Map(Box<Type>),
    Enum(String),
    Struct(String),
}

impl Type {
    pub fn is_collection(&self) -> bool {
        matches!(self, Type::List(_) | Type::Map(_))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::String => f.write_str("string"),
            Type::Bool => f.write_str("bool"),
            Type::I32 => f.write_str("i32"),
            Type::I64 => f.write_str("i64"),
            Type::F64 => f.write_str("f64"),
            Type::Json => f.write_str("json"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Map(t) => write!(f, "map<{t}>"),
            Type::Enum(n) | Type::Struct(n) => f.write_str(n),
        }
    }
}

impl Spec {
    pub fn enum_named(&self, name: &str) -> Option<&Enum> {
        self.modules
            .iter()
            .flat_map(|m| &m.enums)
            .find(|e| e.name == name)
    }

    pub fn module_of(&self, type_name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| {
            m.enums.iter().any(|e| e.name == type_name)
                || m.structs.iter().any(|s| s.name == type_name)
        })
    }

    pub fn structs(&self) -> impl Iterator<Item = &Struct> {
        self.modules.iter().flat_map(|m| &m.structs)
    }
}

// ---------------------------------------------------------------------------------------------
// The files as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    module: RawModule,
    #[serde(default, rename = "enum")]
    enums: Vec<RawEnum>,
    #[serde(default, rename = "struct")]
    structs: Vec<RawStruct>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    name: Spanned<String>,
    doc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnum {
    name: Spanned<String>,
    doc: String,
    #[serde(default)]
    repr: Option<Spanned<String>>,
    unknown: Spanned<String>,
    unknown_why: String,
    values: Vec<Spanned<RawEnumValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnumValue {
    wire: Spanned<toml::Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    proto: Option<i64>,
    #[serde(default)]
    default: bool,
    doc: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStruct {
    name: Spanned<String>,
    doc: String,
    #[serde(default)]
    pascal_case_aliases: bool,
    fields: Vec<Spanned<RawField>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    #[serde(default)]
    rust: Option<String>,
    #[serde(rename = "type")]
    ty: Spanned<String>,
    #[serde(default)]
    presence: Option<Spanned<String>>,
    #[serde(default)]
    default: bool,
    proto: Spanned<i64>,
    #[serde(default, rename = "in")]
    location: Option<Spanned<String>>,
    #[serde(default)]
    aliases: Vec<String>,
    doc: String,
}

// ---------------------------------------------------------------------------------------------
// Loading and checking.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TypeKind {
    Enum { has_default: bool },
    Struct,
}

/// Reads every `*.toml` in `spec_dir` (sorted by name, so output is deterministic).
pub fn load_dir(repo_root: &Path, spec_dir: &Path) -> anyhow::Result<Spec> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(spec_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let shown = path.strip_prefix(repo_root).unwrap_or(&path).to_path_buf();
        files.push((shown, text));
    }
    Ok(parse_files(&files)?)
}

/// Parses and checks spec files given as `(path shown in errors, contents)`.
pub fn parse_files(files: &[(PathBuf, String)]) -> Result<Spec, SpecError> {
    let mut modules = Vec::new();
    // Every type name, for cross-file references.
    let mut kinds: BTreeMap<String, TypeKind> = BTreeMap::new();
    let mut raws = Vec::new();
    for (path, text) in files {
        let at = |span: Range<usize>, message: String| locate(path, text, span.start, message);
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let start = e.span().map_or(0, |s| s.start);
            locate(path, text, start, e.message().trim_end().to_string())
        })?;
        for name in raw
            .enums
            .iter()
            .map(|e| {
                let has_default = e.values.iter().any(|v| v.get_ref().default);
                (&e.name, TypeKind::Enum { has_default })
            })
            .chain(raw.structs.iter().map(|s| (&s.name, TypeKind::Struct)))
        {
            check_type_name(name.0).map_err(|m| at(name.0.span(), m))?;
            if kinds.insert(name.0.get_ref().clone(), name.1).is_some() {
                return Err(at(
                    name.0.span(),
                    format!("type `{}` is defined twice", name.0.get_ref()),
                ));
            }
        }
        raws.push((path, text, raw));
    }
    let mut module_names = BTreeSet::new();
    for (path, text, raw) in raws {
        let at = |span: Range<usize>, message: String| locate(path, text, span.start, message);
        let module_name = raw.module.name.get_ref().clone();
        if !is_snake_case(&module_name) {
            return Err(at(
                raw.module.name.span(),
                format!("module name `{module_name}` must be snake_case"),
            ));
        }
        if !module_names.insert(module_name.clone()) {
            return Err(at(
                raw.module.name.span(),
                format!("module `{module_name}` is defined twice"),
            ));
        }
        let mut enums = Vec::new();
        for e in raw.enums {
            enums.push(check_enum(e, &at)?);
        }
        let mut structs = Vec::new();
        for s in raw.structs {
            structs.push(check_struct(s, &kinds, &at)?);
        }
        modules.push(Module {
            source: path.to_string_lossy().replace('\\', "/"),
            name: module_name,
            doc: raw.module.doc,
            enums,
            structs,
        });
    }
    Ok(Spec { modules })
}

fn check_enum(
    raw: RawEnum,
    at: &impl Fn(Range<usize>, String) -> SpecError,
) -> Result<Enum, SpecError> {
    let name = raw.name.get_ref().clone();
    let repr = match raw.repr.as_ref().map(|r| r.get_ref().as_str()) {
        None | Some("string") => Repr::String,
        Some("int") => Repr::Int,
        Some(other) => {
            return Err(at(
                raw.repr.as_ref().map_or(raw.name.span(), Spanned::span),
                format!("enum `{name}`: repr must be \"string\" or \"int\", not \"{other}\""),
            ));
        }
    };
    let unknown = match raw.unknown.get_ref().as_str() {
        "keep" => Unknown::Keep,
        "reject" => Unknown::Reject,
        other => {
            return Err(at(
                raw.unknown.span(),
                format!("enum `{name}`: unknown must be \"keep\" or \"reject\", not \"{other}\""),
            ));
        }
    };
    if raw.values.is_empty() {
        return Err(at(raw.name.span(), format!("enum `{name}` has no values")));
    }
    let mut values = Vec::new();
    let mut seen_wire = BTreeSet::new();
    let mut seen_name = BTreeSet::new();
    let mut seen_proto = BTreeSet::new();
    let mut defaults = 0;
    for spanned in raw.values {
        let span = spanned.span();
        let v = spanned.into_inner();
        let (wire, variant, proto) = match (repr, v.wire.get_ref()) {
            (Repr::String, toml::Value::String(s)) => {
                let variant = v.name.clone().unwrap_or_else(|| s.clone());
                let Some(proto) = v.proto else {
                    return Err(at(
                        span,
                        format!("enum `{name}` value `{s}` needs a `proto` number"),
                    ));
                };
                (WireValue::Str(s.clone()), variant, proto)
            }
            (Repr::Int, toml::Value::Integer(n)) => {
                let Ok(n) = i32::try_from(*n) else {
                    return Err(at(
                        v.wire.span(),
                        format!("enum `{name}`: {n} is not an i32"),
                    ));
                };
                let Some(variant) = v.name.clone() else {
                    return Err(at(
                        span,
                        format!("enum `{name}` value {n} needs a `name` (its Rust variant)"),
                    ));
                };
                if v.proto.is_some_and(|p| p != i64::from(n)) {
                    return Err(at(
                        span,
                        format!(
                            "enum `{name}` value {n}: an int enum's proto number is its wire number; leave `proto` out"
                        ),
                    ));
                }
                (WireValue::Int(n), variant, i64::from(n))
            }
            (Repr::String, _) => {
                return Err(at(
                    v.wire.span(),
                    format!("enum `{name}` has repr \"string\": `wire` must be a string"),
                ));
            }
            (Repr::Int, _) => {
                return Err(at(
                    v.wire.span(),
                    format!("enum `{name}` has repr \"int\": `wire` must be an integer"),
                ));
            }
        };
        if !is_pascal_case(&variant) {
            return Err(at(
                span,
                format!("enum `{name}`: variant name `{variant}` must be PascalCase (give `name`)"),
            ));
        }
        if variant == "Other" && unknown == Unknown::Keep {
            return Err(at(
                span,
                format!("enum `{name}`: `Other` is reserved for unknown values"),
            ));
        }
        let wire_key = match &wire {
            WireValue::Str(s) => s.clone(),
            WireValue::Int(n) => n.to_string(),
        };
        if !seen_wire.insert(wire_key.clone()) {
            return Err(at(
                span,
                format!("enum `{name}`: wire value `{wire_key}` appears twice"),
            ));
        }
        if !seen_name.insert(variant.clone()) {
            return Err(at(
                span,
                format!("enum `{name}`: variant `{variant}` appears twice"),
            ));
        }
        let Ok(proto) = i32::try_from(proto) else {
            return Err(at(
                span,
                format!("enum `{name}`: proto number {proto} is not an i32"),
            ));
        };
        if proto < 0 {
            return Err(at(
                span,
                format!("enum `{name}`: proto number {proto} is negative"),
            ));
        }
        if !seen_proto.insert(proto) {
            return Err(at(
                span,
                format!("enum `{name}`: proto number {proto} appears twice"),
            ));
        }
        if v.default {
            defaults += 1;
            if defaults > 1 {
                return Err(at(
                    span,
                    format!("enum `{name}`: only one value may be `default = true`"),
                ));
            }
        }
        values.push(EnumValue {
            wire,
            name: variant,
            proto,
            default: v.default,
            doc: v.doc,
        });
    }
    Ok(Enum {
        name,
        doc: raw.doc,
        repr,
        unknown,
        unknown_why: raw.unknown_why,
        values,
    })
}

fn check_struct(
    raw: RawStruct,
    kinds: &BTreeMap<String, TypeKind>,
    at: &impl Fn(Range<usize>, String) -> SpecError,
) -> Result<Struct, SpecError> {
    let name = raw.name.get_ref().clone();
    let mut fields = Vec::new();
    let mut seen_wire = BTreeSet::new();
    let mut seen_rust = BTreeSet::new();
    let mut seen_proto = BTreeSet::new();
    for spanned in raw.fields {
        let span = spanned.span();
        let f = spanned.into_inner();
        let field_at =
            |message: String| at(span.clone(), format!("`{name}.{}`: {message}", f.name));
        if f.name.is_empty() {
            return Err(at(
                span,
                format!("struct `{name}` has a field with an empty name"),
            ));
        }
        let ty = parse_type(f.ty.get_ref(), kinds)
            .map_err(|m| at(f.ty.span(), format!("`{name}.{}`: {m}", f.name)))?;
        let presence = match f.presence.as_ref().map(|p| p.get_ref().as_str()) {
            None | Some("required") => Presence::Required,
            Some("optional") => Presence::Optional,
            Some("nullable") => Presence::Nullable,
            Some(other) => {
                return Err(field_at(format!(
                    "presence must be \"required\", \"optional\" or \"nullable\", not \"{other}\""
                )));
            }
        };
        if presence != Presence::Required && f.default {
            return Err(field_at(
                "`default = true` only applies to required fields (an optional one is already absent)".into(),
            ));
        }
        if ty.is_collection() && presence == Presence::Nullable {
            return Err(field_at(
                "a list or map cannot be nullable; use presence = \"optional\" (empty is left out)"
                    .into(),
            ));
        }
        if ty == Type::Json && presence != Presence::Required {
            return Err(field_at(
                "a json field is always present (it can hold null itself); remove `presence`"
                    .into(),
            ));
        }
        if f.default && matches!(ty, Type::Json | Type::Struct(_)) {
            return Err(field_at(format!(
                "`default = true` is not supported for {ty}"
            )));
        }
        if let (true, Type::Enum(enum_name)) = (f.default, &ty)
            && kinds.get(enum_name) == Some(&TypeKind::Enum { has_default: false })
        {
            return Err(field_at(format!(
                "`default = true` needs enum `{enum_name}` to mark one value `default = true`"
            )));
        }
        let location = match f.location.as_ref().map(|l| l.get_ref().as_str()) {
            None | Some("body") => Location::Body,
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some(other) => {
                return Err(field_at(format!(
                    "`in` must be \"body\", \"path\" or \"query\", not \"{other}\""
                )));
            }
        };
        let proto = *f.proto.get_ref();
        if !(1..=536_870_911).contains(&proto) || (19_000..=19_999).contains(&proto) {
            return Err(at(
                f.proto.span(),
                format!(
                    "`{name}.{}`: proto field number {proto} is outside 1..=536870911 or in the reserved 19000..=19999",
                    f.name
                ),
            ));
        }
        let proto = proto as u32;
        let snake = f.rust.clone().unwrap_or_else(|| to_snake_case(&f.name));
        if !is_snake_case(&snake) {
            return Err(field_at(format!(
                "Rust name `{snake}` is not snake_case; give `rust = \"...\"`"
            )));
        }
        if !seen_wire.insert(f.name.clone()) {
            return Err(field_at("the wire name appears twice".into()));
        }
        for alias in &f.aliases {
            if alias.is_empty() || !seen_wire.insert(alias.clone()) {
                return Err(field_at(format!(
                    "alias `{alias}` is empty or already names a field of `{name}`"
                )));
            }
        }
        if !seen_rust.insert(snake.clone()) {
            return Err(field_at(format!("the Rust name `{snake}` appears twice")));
        }
        if !seen_proto.insert(proto) {
            return Err(at(
                f.proto.span(),
                format!(
                    "`{name}.{}`: proto field number {proto} appears twice",
                    f.name
                ),
            ));
        }
        let rust_name = if RUST_KEYWORDS.contains(&snake.as_str()) {
            format!("r#{snake}")
        } else {
            snake.clone()
        };
        fields.push(Field {
            name: f.name,
            rust_name,
            proto_name: snake,
            ty,
            presence,
            default: f.default,
            proto,
            location,
            aliases: f.aliases,
            doc: f.doc,
        });
    }
    Ok(Struct {
        name,
        doc: raw.doc,
        pascal_case_aliases: raw.pascal_case_aliases,
        fields,
    })
}

fn parse_type(text: &str, kinds: &BTreeMap<String, TypeKind>) -> Result<Type, String> {
    let text = text.trim();
    let inner = |prefix: &str| -> Option<&str> {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix('>'))
            .map(str::trim)
    };
    if let Some(item) = inner("list<") {
        let item = parse_type(item, kinds)?;
        if item.is_collection() {
            return Err(format!(
                "`{text}`: a list of lists or maps has no protobuf form"
            ));
        }
        return Ok(Type::List(Box::new(item)));
    }
    if let Some(value) = inner("map<") {
        let value = parse_type(value, kinds)?;
        if value.is_collection() {
            return Err(format!(
                "`{text}`: a map of lists or maps has no protobuf form"
            ));
        }
        return Ok(Type::Map(Box::new(value)));
    }
    Ok(match text {
        "string" => Type::String,
        "bool" => Type::Bool,
        "i32" => Type::I32,
        "i64" => Type::I64,
        "f64" => Type::F64,
        "json" => Type::Json,
        name => match kinds.get(name) {
            Some(TypeKind::Enum { .. }) => Type::Enum(name.to_string()),
            Some(TypeKind::Struct) => Type::Struct(name.to_string()),
            None => {
                return Err(format!(
                    "unknown type `{name}` (expected string, bool, i32, i64, f64, json, list<T>, map<T>, or a spec enum or struct)"
                ));
            }
        },
    })
}

fn check_type_name(name: &Spanned<String>) -> Result<(), String> {
    let n = name.get_ref();
    if !is_pascal_case(n) {
        return Err(format!("type name `{n}` must be PascalCase"));
    }
    if RESERVED_TYPE_NAMES.contains(&n.as_str()) {
        return Err(format!(
            "type name `{n}` is reserved for Confer's JSON value messages"
        ));
    }
    Ok(())
}

/// Names the generator itself uses in the protobuf package.
const RESERVED_TYPE_NAMES: &[&str] = &[
    "JsonValue",
    "JsonList",
    "JsonObject",
    "JsonField",
    "JsonNull",
];

const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

fn locate(path: &Path, text: &str, offset: usize, message: String) -> SpecError {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    SpecError {
        file: path.to_path_buf(),
        line,
        column,
        message,
    }
}

pub fn to_snake_case(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `dialState` -> `DialState`.
pub fn to_pascal_case(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `CallState` -> `CALL_STATE`.
pub fn to_shouty_snake_case(name: &str) -> String {
    to_snake_case(name).to_ascii_uppercase()
}

fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_pascal_case(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec, SpecError> {
        parse_files(&[(PathBuf::from("spec/test.toml"), text.to_string())])
    }

    const GOOD: &str = r#"
[module]
name = "test"
doc = "A test module."

[[enum]]
name = "Color"
doc = "A color."
unknown = "keep"
unknown_why = "Because."
values = [
  { wire = "Red", proto = 1, doc = "Red." },
]

[[struct]]
name = "Paint"
doc = "Paint."
fields = [
  { name = "color", type = "Color", proto = 1, doc = "Its color." },
  { name = "type", type = "string", presence = "optional", proto = 2, doc = "Its kind." },
  { name = "labelURL", type = "list<string>", proto = 3, doc = "Labels." },
]
"#;

    #[test]
    fn a_good_spec_loads() {
        let spec = parse(GOOD).unwrap();
        let paint = &spec.modules[0].structs[0];
        assert_eq!(paint.fields[1].rust_name, "r#type");
        assert_eq!(paint.fields[1].proto_name, "type");
        assert_eq!(paint.fields[2].rust_name, "label_url");
        assert_eq!(paint.fields[0].ty, Type::Enum("Color".into()));
    }

    /// Each malformed spec gets an error naming the file, the line, and what is wrong.
    #[test]
    fn malformed_specs_are_errors_with_file_and_line() {
        let cases: &[(&str, &str, usize, &str)] = &[
            // (what to replace, with what, expected line, expected words)
            (
                "type = \"Color\"",
                "type = \"Colour\"",
                19,
                "unknown type `Colour`",
            ),
            (
                "proto = 2, doc = \"Its kind.\"",
                "proto = 1, doc = \"Its kind.\"",
                20,
                "proto field number 1 appears twice",
            ),
            (
                "unknown = \"keep\"",
                "unknown = \"maybe\"",
                9,
                "unknown must be \"keep\" or \"reject\"",
            ),
            (
                "presence = \"optional\"",
                "presence = \"sometimes\"",
                20,
                "presence must be",
            ),
            (
                "doc = \"Its color.\" }",
                "doc = \"Its color.\", colour = 1 }",
                19,
                "unknown field `colour`",
            ),
            ("values = [", "values = [[", 15, "missing comma"),
            (
                "{ wire = \"Red\", proto = 1, doc = \"Red.\" }",
                "{ wire = \"Red\", doc = \"Red.\" }",
                12,
                "needs a `proto` number",
            ),
            (
                "name = \"Paint\"",
                "name = \"Color\"",
                16,
                "type `Color` is defined twice",
            ),
            (
                "type = \"list<string>\"",
                "type = \"list<list<string>>\"",
                21,
                "list of lists",
            ),
        ];
        for (from, to, line, words) in cases {
            assert!(GOOD.contains(from), "test case does not apply: {from}");
            let text = GOOD.replacen(from, to, 1);
            let err = parse(&text).expect_err(&format!("`{to}` must be refused"));
            assert_eq!(err.file, PathBuf::from("spec/test.toml"));
            assert_eq!(err.line, *line, "line of `{err}`");
            assert!(
                err.to_string().contains(words),
                "`{err}` should say `{words}`"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("spec/test.toml:{line}:")),
                "{err}"
            );
        }
    }

    #[test]
    fn case_conversions() {
        assert_eq!(to_snake_case("e164Number"), "e164_number");
        assert_eq!(to_snake_case("isOriginalMember"), "is_original_member");
        assert_eq!(
            to_snake_case("CallStateChangeMessage"),
            "call_state_change_message"
        );
        assert_eq!(
            to_snake_case("mostRecentParticipantCallSid"),
            "most_recent_participant_call_sid"
        );
        assert_eq!(
            to_shouty_snake_case("SessionDialState"),
            "SESSION_DIAL_STATE"
        );
        assert_eq!(to_pascal_case("dialState"), "DialState");
    }
}
