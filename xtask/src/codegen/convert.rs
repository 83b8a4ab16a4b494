//! Emits the conversions between the Rust models and the prost messages: `From<model> for proto`
//! (infallible) and `TryFrom<proto> for model` (a message from the network may lack a required
//! field or carry an enum number nobody knows; the error names the field's path).

use std::fmt::Write;

use super::spec::{Enum, Presence, Repr, Spec, Struct, Type, Unknown};

pub fn convert_file(spec: &Spec) -> String {
    let mut out = String::new();
    out.push_str(
        "//! Conversions between the wire models and their protobuf messages, both ways and lossless:\n\
         //! `From<model> for proto` and `TryFrom<proto> for model`.\n\n",
    );
    out.push_str("#![allow(clippy::redundant_closure, clippy::needless_update)]\n\n");
    let modules: Vec<&str> = spec.modules.iter().map(|m| m.name.as_str()).collect();
    let _ = writeln!(out, "use super::{{{}, proto}};", modules.join(", "));
    out.push_str("use crate::proto_support::{self as support, ProtoError};\n\n");
    for m in &spec.modules {
        for e in m
            .enums
            .iter()
            .filter(|e| e.repr == Repr::String && e.unknown == Unknown::Reject)
        {
            closed_enum(&mut out, &m.name, e);
        }
        for s in &m.structs {
            struct_conversions(&mut out, spec, &m.name, s);
        }
    }
    out
}

fn model_path(spec: &Spec, name: &str) -> String {
    spec.module_of(name)
        .map_or_else(|| name.to_string(), |m| format!("{}::{name}", m.name))
}

fn closed_enum(out: &mut String, module: &str, e: &Enum) {
    let name = &e.name;
    let _ = writeln!(out, "impl From<{module}::{name}> for proto::{name} {{");
    let _ = writeln!(
        out,
        "fn from(value: {module}::{name}) -> Self {{\nmatch value {{"
    );
    for v in &e.values {
        let _ = writeln!(out, "{module}::{name}::{0} => Self::{0},", v.name);
    }
    out.push_str("}\n}\n}\n\n");
    let _ = writeln!(out, "impl TryFrom<proto::{name}> for {module}::{name} {{");
    out.push_str("type Error = ProtoError;\n\n");
    let _ = writeln!(
        out,
        "fn try_from(value: proto::{name}) -> Result<Self, ProtoError> {{\nOk(match value {{"
    );
    for v in &e.values {
        let _ = writeln!(out, "proto::{name}::{0} => Self::{0},", v.name);
    }
    if e.needs_unspecified() {
        let _ = writeln!(
            out,
            "proto::{name}::Unspecified => return Err(ProtoError::unspecified(\"{name}\")),"
        );
    }
    out.push_str("})\n}\n}\n\n");
}

/// An expression converting the model value `value` (of `ty`, never a list or map) to protobuf.
fn to_proto(spec: &Spec, ty: &Type, value: &str) -> String {
    match ty {
        Type::String | Type::Bool | Type::I32 | Type::I64 | Type::F64 => value.to_string(),
        Type::Json => format!("support::json_to_proto({value})"),
        Type::Struct(name) => format!("proto::{name}::from({value})"),
        Type::Enum(name) => match spec.enum_named(name) {
            Some(e) if e.repr == Repr::Int => format!("{value}.code()"),
            Some(e) if e.unknown == Unknown::Reject => {
                format!("proto::{name}::from({value}) as i32")
            }
            _ => format!("{value}.as_str().to_owned()"),
        },
        Type::List(_) | Type::Map(_) => value.to_string(),
    }
}

/// An expression converting the protobuf value `value` of `ty` (never a list or map) to the
/// model, and whether it is fallible (a `Result<_, ProtoError>`) or the plain value.
fn from_proto(spec: &Spec, ty: &Type, value: &str) -> (String, bool) {
    match ty {
        Type::String | Type::Bool | Type::I32 | Type::I64 | Type::F64 => (value.to_string(), false),
        Type::Json => (format!("support::json_from_proto({value})"), true),
        Type::Struct(name) => (
            format!("{}::try_from({value})", model_path(spec, name)),
            true,
        ),
        Type::Enum(name) => {
            let model = model_path(spec, name);
            match spec.enum_named(name) {
                Some(e) if e.repr == Repr::Int => (format!("{model}::from_code({value})"), false),
                Some(e) if e.unknown == Unknown::Reject => (
                    format!("support::enum_from_proto::<proto::{name}, {model}>({value})"),
                    true,
                ),
                _ => (format!("{model}::from_wire(&{value})"), false),
            }
        }
        Type::List(_) | Type::Map(_) => (value.to_string(), false),
    }
}

/// Whether the model and protobuf values are the same Rust value (scalars and strings).
fn is_identity(ty: &Type) -> bool {
    matches!(
        ty,
        Type::String | Type::Bool | Type::I32 | Type::I64 | Type::F64
    )
}

fn struct_conversions(out: &mut String, spec: &Spec, module: &str, s: &Struct) {
    let name = &s.name;
    // model -> proto
    let _ = writeln!(out, "impl From<{module}::{name}> for proto::{name} {{");
    let _ = writeln!(out, "fn from(value: {module}::{name}) -> Self {{\nSelf {{");
    for f in &s.fields {
        let field = format!("value.{}", f.rust_name);
        let expr = match (&f.ty, f.presence) {
            (Type::List(item), _) => {
                if is_identity(item) {
                    field
                } else {
                    format!(
                        "{field}.into_iter().map(|item| {}).collect()",
                        to_proto(spec, item, "item")
                    )
                }
            }
            (Type::Map(v), presence) if **v == Type::Json => {
                if presence == Presence::Required {
                    format!("Some(support::json_object_to_proto({field}))")
                } else {
                    format!(
                        "Some({field}).filter(|map| !map.is_empty()).map(support::json_object_to_proto)"
                    )
                }
            }
            (Type::Map(v), _) if is_identity(v) => format!("{field}.into_iter().collect()"),
            (Type::Map(v), _) => format!(
                "{field}.into_iter().map(|(key, item)| (key, {})).collect()",
                to_proto(spec, v, "item")
            ),
            (ty, Presence::Required) => {
                let converted = to_proto(spec, ty, &field);
                if super::proto::is_message(ty) {
                    format!("Some({converted})")
                } else {
                    converted
                }
            }
            (ty, _) => {
                if is_identity(ty) {
                    field
                } else {
                    format!("{field}.map(|item| {})", to_proto(spec, ty, "item"))
                }
            }
        };
        let _ = writeln!(out, "{}: {expr},", proto_field_ident(&f.proto_name));
    }
    out.push_str("}\n}\n}\n\n");

    // proto -> model
    let _ = writeln!(out, "impl TryFrom<proto::{name}> for {module}::{name} {{");
    out.push_str("type Error = ProtoError;\n\n");
    let _ = writeln!(
        out,
        "fn try_from(value: proto::{name}) -> Result<Self, ProtoError> {{\nOk(Self {{"
    );
    for f in &s.fields {
        let field = format!("value.{}", proto_field_ident(&f.proto_name));
        let wire = &f.name;
        let at = format!(".map_err(|e| e.at(\"{wire}\"))?");
        let expr = match (&f.ty, f.presence) {
            (Type::List(item), _) => match from_proto(spec, item, "item") {
                (_, false) if is_identity(item) => field,
                (expr, false) => format!("{field}.into_iter().map(|item| {expr}).collect()"),
                (expr, true) => {
                    format!("support::list_from_proto(\"{wire}\", {field}, |item| {expr})?")
                }
            },
            (Type::Map(v), _) if **v == Type::Json => format!(
                "{field}.map(support::json_object_from_proto).transpose(){at}.unwrap_or_default()"
            ),
            (Type::Map(v), _) => match from_proto(spec, v, "item") {
                (_, false) if is_identity(v) => format!("{field}.into_iter().collect()"),
                (expr, false) => {
                    format!("{field}.into_iter().map(|(key, item)| (key, {expr})).collect()")
                }
                (expr, true) => {
                    format!("support::map_from_proto(\"{wire}\", {field}, |item| {expr})?")
                }
            },
            (ty, Presence::Required) => {
                let value = if super::proto::is_message(ty) {
                    format!("support::required(\"{wire}\", {field})?")
                } else {
                    field
                };
                match from_proto(spec, ty, &value) {
                    (expr, false) => expr,
                    (expr, true) => format!("{expr}{at}"),
                }
            }
            (ty, _) => match from_proto(spec, ty, "item") {
                (_, false) if is_identity(ty) => field,
                (expr, false) => format!("{field}.map(|item| {expr})"),
                (expr, true) => format!("{field}.map(|item| {expr}).transpose(){at}"),
            },
        };
        let _ = writeln!(out, "{}: {expr},", f.rust_name);
    }
    out.push_str("})\n}\n}\n\n");
}

/// prost's Rust name for a protobuf field (`type` becomes `r#type`).
fn proto_field_ident(proto_name: &str) -> String {
    match proto_name {
        "type" | "match" | "ref" | "mod" | "fn" | "use" | "impl" | "in" | "as" | "move"
        | "loop" | "trait" | "where" | "async" | "await" | "dyn" | "box" | "const" | "enum"
        | "extern" | "static" | "struct" | "unsafe" | "yield" | "gen" => {
            format!("r#{proto_name}")
        }
        other => other.to_string(),
    }
}
