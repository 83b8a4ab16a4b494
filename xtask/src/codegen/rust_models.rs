//! Emits the Rust wire models: one module per spec file, deriving serde (exact wire names),
//! `schemars::JsonSchema` and `utoipa::ToSchema`, with the spec's docs as doc comments.

use std::fmt::Write;

use super::spec::{
    Enum, Field, Location, Module, Presence, Repr, Spec, Struct, Type, Unknown, WireValue,
};

pub fn module_file(spec: &Spec, module: &Module) -> String {
    let mut out = String::new();
    doc_comment(&mut out, "//!", &module.doc);
    out.push_str("//!\n");
    let _ = writeln!(out, "//! Declared in `{}`.", module.source);
    out.push('\n');
    for e in &module.enums {
        match (e.repr, e.unknown) {
            (Repr::String, Unknown::Reject) => closed_string_enum(&mut out, e),
            (Repr::String, Unknown::Keep) => open_string_enum(&mut out, e),
            (Repr::Int, _) => open_int_enum(&mut out, e),
        }
    }
    for s in &module.structs {
        struct_def(&mut out, spec, module, s);
    }
    out
}

/// The Rust type of a spec type, as seen from `from_module`.
pub fn rust_type(spec: &Spec, from_module: &Module, ty: &Type) -> String {
    match ty {
        Type::String => "String".into(),
        Type::Bool => "bool".into(),
        Type::I32 => "i32".into(),
        Type::I64 => "i64".into(),
        Type::F64 => "f64".into(),
        Type::Json => "::serde_json::Value".into(),
        Type::List(item) => format!("Vec<{}>", rust_type(spec, from_module, item)),
        Type::Map(value) => {
            format!(
                "::indexmap::IndexMap<String, {}>",
                rust_type(spec, from_module, value)
            )
        }
        Type::Enum(name) | Type::Struct(name) => match spec.module_of(name) {
            Some(m) if m.name != from_module.name => format!("super::{}::{name}", m.name),
            _ => name.clone(),
        },
    }
}

fn field_type(spec: &Spec, module: &Module, f: &Field) -> String {
    let ty = rust_type(spec, module, &f.ty);
    if f.is_option() {
        format!("Option<{ty}>")
    } else {
        ty
    }
}

fn doc_comment(out: &mut String, prefix: &str, doc: &str) {
    for line in doc.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{prefix}");
        } else {
            let _ = writeln!(out, "{prefix} {line}");
        }
    }
}

fn unknown_policy_doc(e: &Enum) -> String {
    match e.unknown {
        Unknown::Keep => format!(
            "Unlisted values on input are kept as [`{}::Other`]: {}",
            e.name, e.unknown_why
        ),
        Unknown::Reject => format!("Unlisted values on input are an error: {}", e.unknown_why),
    }
}

fn wire_str(e: &Enum, index: usize) -> &str {
    match &e.values[index].wire {
        WireValue::Str(s) => s,
        WireValue::Int(_) => "",
    }
}

fn closed_string_enum(out: &mut String, e: &Enum) {
    doc_comment(out, "///", &e.doc);
    out.push_str("///\n");
    doc_comment(out, "///", &unknown_policy_doc(e));
    let default = if e.default_value().is_some() {
        ", Default"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema, ::utoipa::ToSchema{default})]"
    );
    let _ = writeln!(out, "pub enum {} {{", e.name);
    for (i, v) in e.values.iter().enumerate() {
        doc_comment(out, "///", &v.doc);
        let wire = wire_str(e, i);
        if wire != v.name {
            let _ = writeln!(out, "#[serde(rename = \"{wire}\")]");
        }
        if v.default {
            out.push_str("#[default]\n");
        }
        let _ = writeln!(out, "{},", v.name);
    }
    out.push_str("}\n\n");
    let _ = writeln!(out, "impl {} {{", e.name);
    out.push_str("/// Every value, in spec order.\n");
    let all: Vec<String> = e
        .values
        .iter()
        .map(|v| format!("Self::{}", v.name))
        .collect();
    let _ = writeln!(
        out,
        "pub const ALL: &'static [Self] = &[{}];\n",
        all.join(", ")
    );
    out.push_str("/// The value as written on the wire.\n");
    out.push_str("pub fn as_str(&self) -> &'static str {\nmatch self {\n");
    for (i, v) in e.values.iter().enumerate() {
        let _ = writeln!(out, "Self::{} => \"{}\",", v.name, wire_str(e, i));
    }
    out.push_str("}\n}\n\n");
    out.push_str("/// Reads a wire value; `None` for a value the spec does not list.\n");
    out.push_str("pub fn from_wire(wire: &str) -> Option<Self> {\nmatch wire {\n");
    for (i, v) in e.values.iter().enumerate() {
        let _ = writeln!(out, "\"{}\" => Some(Self::{}),", wire_str(e, i), v.name);
    }
    out.push_str("_ => None,\n}\n}\n}\n\n");
    display_impl(out, &e.name, "f.write_str(self.as_str())");
}

fn open_string_enum(out: &mut String, e: &Enum) {
    doc_comment(out, "///", &e.doc);
    out.push_str("///\n");
    doc_comment(out, "///", &unknown_policy_doc(e));
    out.push_str("#[derive(Debug, Clone, PartialEq, Eq, Hash)]\n");
    let _ = writeln!(out, "pub enum {} {{", e.name);
    for v in &e.values {
        doc_comment(out, "///", &v.doc);
        let _ = writeln!(out, "{},", v.name);
    }
    out.push_str(
        "/// A value the spec does not list, kept as received (never one of the listed values).\n",
    );
    out.push_str("Other(String),\n}\n\n");
    let _ = writeln!(out, "impl {} {{", e.name);
    out.push_str("/// Every listed value, in spec order.\n");
    let all: Vec<String> = e
        .values
        .iter()
        .map(|v| format!("Self::{}", v.name))
        .collect();
    let _ = writeln!(
        out,
        "pub const KNOWN: &'static [Self] = &[{}];\n",
        all.join(", ")
    );
    out.push_str("/// The value as written on the wire.\n");
    out.push_str("pub fn as_str(&self) -> &str {\nmatch self {\n");
    for (i, v) in e.values.iter().enumerate() {
        let _ = writeln!(out, "Self::{} => \"{}\",", v.name, wire_str(e, i));
    }
    out.push_str("Self::Other(wire) => wire,\n}\n}\n\n");
    out.push_str("/// Reads a wire value; one the spec does not list becomes [`Self::Other`].\n");
    out.push_str("pub fn from_wire(wire: &str) -> Self {\nmatch wire {\n");
    for (i, v) in e.values.iter().enumerate() {
        let _ = writeln!(out, "\"{}\" => Self::{},", wire_str(e, i), v.name);
    }
    out.push_str("other => Self::Other(other.to_owned()),\n}\n}\n}\n\n");
    display_impl(out, &e.name, "f.write_str(self.as_str())");
    let _ = writeln!(
        out,
        "impl ::serde::Serialize for {} {{
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {{
                serializer.serialize_str(self.as_str())
            }}
        }}

        impl<'de> ::serde::Deserialize<'de> for {} {{
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{
                let wire = String::deserialize(deserializer)?;
                Ok(Self::from_wire(&wire))
            }}
        }}
        ",
        e.name, e.name
    );
    let examples: Vec<String> = (0..e.values.len())
        .map(|i| format!("\"{}\"", wire_str(e, i)))
        .collect();
    schema_impls(out, e, "String", "\"type\": \"string\"", &examples);
}

fn open_int_enum(out: &mut String, e: &Enum) {
    doc_comment(out, "///", &e.doc);
    out.push_str("///\n");
    doc_comment(out, "///", &unknown_policy_doc(e));
    out.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n");
    let _ = writeln!(out, "pub enum {} {{", e.name);
    let codes: Vec<i32> = e
        .values
        .iter()
        .map(|v| match v.wire {
            WireValue::Int(n) => n,
            WireValue::Str(_) => 0,
        })
        .collect();
    for (v, code) in e.values.iter().zip(&codes) {
        doc_comment(out, "///", &format!("`{code}`: {}", v.doc));
        let _ = writeln!(out, "{},", v.name);
    }
    out.push_str(
        "/// A code the spec does not list, kept as received (never one of the listed codes).\n",
    );
    out.push_str("Other(i32),\n}\n\n");
    let _ = writeln!(out, "impl {} {{", e.name);
    out.push_str("/// Every listed value, in spec order.\n");
    let all: Vec<String> = e
        .values
        .iter()
        .map(|v| format!("Self::{}", v.name))
        .collect();
    let _ = writeln!(
        out,
        "pub const KNOWN: &'static [Self] = &[{}];\n",
        all.join(", ")
    );
    out.push_str("/// The number written on the wire.\n");
    out.push_str("pub fn code(&self) -> i32 {\nmatch self {\n");
    for (v, code) in e.values.iter().zip(&codes) {
        let _ = writeln!(out, "Self::{} => {code},", v.name);
    }
    out.push_str("Self::Other(code) => *code,\n}\n}\n\n");
    out.push_str("/// Reads a wire number; one the spec does not list becomes [`Self::Other`].\n");
    out.push_str("pub fn from_code(code: i32) -> Self {\nmatch code {\n");
    for (v, code) in e.values.iter().zip(&codes) {
        let _ = writeln!(out, "{code} => Self::{},", v.name);
    }
    out.push_str("other => Self::Other(other),\n}\n}\n}\n\n");
    display_impl(out, &e.name, "write!(f, \"{}\", self.code())");
    let _ = writeln!(
        out,
        "impl ::serde::Serialize for {} {{
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {{
                serializer.serialize_i32(self.code())
            }}
        }}

        impl<'de> ::serde::Deserialize<'de> for {} {{
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{
                Ok(Self::from_code(i32::deserialize(deserializer)?))
            }}
        }}
        ",
        e.name, e.name
    );
    let examples: Vec<String> = codes.iter().map(i32::to_string).collect();
    schema_impls(
        out,
        e,
        "Integer",
        "\"type\": \"integer\", \"format\": \"int32\"",
        &examples,
    );
}

fn display_impl(out: &mut String, name: &str, body: &str) {
    let _ = writeln!(
        out,
        "impl ::std::fmt::Display for {name} {{
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {{
                {body}
            }}
        }}
        "
    );
}

/// JSON Schema and OpenAPI for the open enums: their type, with the listed values as examples
/// (not as `enum`, which would tell clients that other values are invalid).
fn schema_impls(
    out: &mut String,
    e: &Enum,
    utoipa_type: &str,
    json_type: &str,
    examples: &[String],
) {
    let description = rust_string(&format!(
        "{} Values not listed may also appear: {}",
        e.doc.trim(),
        e.unknown_why.trim()
    ));
    let examples = examples.join(", ");
    let _ = writeln!(
        out,
        "impl ::schemars::JsonSchema for {name} {{
            fn schema_name() -> ::std::borrow::Cow<'static, str> {{
                \"{name}\".into()
            }}

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {{
                ::schemars::json_schema!({{ {json_type}, \"description\": {description}, \"examples\": [{examples}] }})
            }}
        }}

        impl ::utoipa::PartialSchema for {name} {{
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {{
                ::utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(::utoipa::openapi::schema::Type::{utoipa_type})
                    .description(Some({description}))
                    .examples([{examples}])
                    .into()
            }}
        }}

        impl ::utoipa::ToSchema for {name} {{}}
        ",
        name = e.name
    );
}

/// A Rust string literal.
pub fn rust_string(s: &str) -> String {
    format!("{s:?}")
}

fn struct_def(out: &mut String, spec: &Spec, module: &Module, s: &Struct) {
    doc_comment(out, "///", &s.doc);
    let derives_default = s
        .fields
        .iter()
        .all(|f| f.presence != Presence::Required || f.default || f.ty.is_collection());
    let default = if derives_default { ", Default" } else { "" };
    let _ = writeln!(
        out,
        "#[derive(Debug, Clone, PartialEq{default}, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema, ::utoipa::ToSchema)]"
    );
    let _ = writeln!(out, "pub struct {} {{", s.name);
    for f in &s.fields {
        doc_comment(out, "///", &f.doc);
        match f.location {
            Location::Body => {}
            Location::Path => out.push_str("///\n/// Travels in the request's URL path.\n"),
            Location::Query => out.push_str("///\n/// Travels in the request's query string.\n"),
        }
        let mut serde = vec![format!("rename = \"{}\"", f.name)];
        let mut aliases: Vec<String> = Vec::new();
        for name in std::iter::once(&f.name).chain(&f.aliases) {
            if name != &f.name {
                aliases.push(name.clone());
            }
            if s.pascal_case_aliases {
                let pascal = super::spec::to_pascal_case(name);
                if &pascal != name && pascal != f.name && !aliases.contains(&pascal) {
                    aliases.push(pascal);
                }
            }
        }
        serde.extend(aliases.iter().map(|alias| format!("alias = \"{alias}\"")));
        match (f.presence, &f.ty) {
            (Presence::Required, _) if f.default => serde.push("default".into()),
            (Presence::Required, _) => {}
            (Presence::Optional, Type::List(_)) => {
                serde.push("default, skip_serializing_if = \"Vec::is_empty\"".into());
            }
            (Presence::Optional, Type::Map(_)) => {
                serde.push(
                    "default, skip_serializing_if = \"::indexmap::IndexMap::is_empty\"".into(),
                );
            }
            (Presence::Optional, _) => {
                serde.push("default, skip_serializing_if = \"Option::is_none\"".into());
            }
            (Presence::Nullable, _) => serde.push("default".into()),
        }
        let _ = writeln!(out, "#[serde({})]", serde.join(", "));
        if f.presence == Presence::Nullable {
            out.push_str("#[schema(nullable)]\n");
        }
        let _ = writeln!(out, "pub {}: {},", f.rust_name, field_type(spec, module, f));
    }
    out.push_str("}\n\n");
}
