//! Emits the protobuf schema: `proto/confer/v1/<module>.proto` per spec file, plus `json.proto`
//! for JSON values, all in package `confer.v1`.

use std::{collections::BTreeSet, fmt::Write};

use super::spec::{Enum, Field, Module, Presence, Spec, Type, WireValue, to_shouty_snake_case};

pub const PACKAGE: &str = "confer.v1";
pub const DIR: &str = "confer/v1";

/// `json.proto`: any JSON value, exactly. `google.protobuf.Value` would turn every number into a
/// double (losing integers above 2^53 and the integer/float distinction) and sort object keys, so
/// the model ⇄ protobuf round trip could not be lossless with it.
pub fn json_proto(header: &str) -> String {
    format!(
        r#"{header}
syntax = "proto3";

package {PACKAGE};

// Any JSON value, kept exactly: integers stay integers, object keys keep their order.
message JsonValue {{
  oneof kind {{
    JsonNull null_value = 1;
    bool bool_value = 2;
    // An integer that fits in a signed 64-bit integer.
    sint64 int_value = 3;
    // An integer above the signed 64-bit range.
    uint64 uint_value = 4;
    // Any other number.
    double double_value = 5;
    string string_value = 6;
    JsonList list_value = 7;
    JsonObject object_value = 8;
  }}
}}

// JSON null.
enum JsonNull {{
  JSON_NULL_VALUE = 0;
}}

// A JSON array.
message JsonList {{
  repeated JsonValue values = 1;
}}

// A JSON object, its members in order.
message JsonObject {{
  repeated JsonField fields = 1;
}}

// One member of a JSON object.
message JsonField {{
  string key = 1;
  JsonValue value = 2;
}}
"#
    )
}

pub fn module_proto(spec: &Spec, module: &Module, header: &str) -> String {
    let mut imports = BTreeSet::new();
    for s in &module.structs {
        for f in &s.fields {
            collect_imports(spec, module, &f.ty, &mut imports);
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    out.push_str("syntax = \"proto3\";\n\n");
    let _ = writeln!(out, "package {PACKAGE};\n");
    for import in &imports {
        let _ = writeln!(out, "import \"{DIR}/{import}.proto\";");
    }
    if !imports.is_empty() {
        out.push('\n');
    }
    comment(&mut out, "", &module.doc);
    out.push('\n');
    for e in module.enums.iter().filter(|e| e.is_proto_enum()) {
        enum_def(&mut out, e);
    }
    for s in &module.structs {
        comment(&mut out, "", &s.doc);
        let _ = writeln!(out, "message {} {{", s.name);
        for f in &s.fields {
            let mut doc = f.doc.clone();
            if let Some(name) = enum_name(&f.ty)
                && let Some(e) = spec.enum_named(name)
                && !e.is_proto_enum()
            {
                let listed: Vec<&str> = e
                    .values
                    .iter()
                    .filter_map(|v| match &v.wire {
                        WireValue::Str(s) => Some(s.as_str()),
                        WireValue::Int(_) => None,
                    })
                    .collect();
                let _ = write!(
                    doc,
                    " A `{name}`: one of {}, or another value a newer server sends.",
                    listed.join(", ")
                );
            }
            comment(&mut out, "  ", &doc);
            let _ = writeln!(
                out,
                "  {}{} {} = {};",
                label(f),
                field_type(spec, &f.ty),
                f.proto_name,
                f.proto
            );
        }
        out.push_str("}\n\n");
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The enum a field holds, directly or as list items.
fn enum_name(ty: &Type) -> Option<&str> {
    match ty {
        Type::Enum(name) => Some(name),
        Type::List(item) => enum_name(item),
        _ => None,
    }
}

fn label(f: &Field) -> &'static str {
    match &f.ty {
        Type::List(_) => "repeated ",
        Type::Map(_) => "",
        ty if f.presence != Presence::Required && !is_message(ty) => "optional ",
        _ => "",
    }
}

/// Whether the protobuf type is a message (and so has presence without `optional`).
pub fn is_message(ty: &Type) -> bool {
    match ty {
        Type::Json | Type::Struct(_) => true,
        Type::Map(value) => **value == Type::Json,
        Type::Enum(_) | Type::String | Type::Bool | Type::I32 | Type::I64 | Type::F64 => false,
        Type::List(_) => false,
    }
}

pub fn field_type(spec: &Spec, ty: &Type) -> String {
    match ty {
        Type::String => "string".into(),
        Type::Bool => "bool".into(),
        Type::I32 => "int32".into(),
        Type::I64 => "int64".into(),
        Type::F64 => "double".into(),
        Type::Json => "JsonValue".into(),
        Type::List(item) => field_type(spec, item),
        Type::Map(value) if **value == Type::Json => "JsonObject".into(),
        Type::Map(value) => format!("map<string, {}>", field_type(spec, value)),
        Type::Enum(name) => match spec.enum_named(name) {
            Some(e) if e.is_proto_enum() => name.clone(),
            _ => "string".into(),
        },
        Type::Struct(name) => name.clone(),
    }
}

fn collect_imports(spec: &Spec, module: &Module, ty: &Type, imports: &mut BTreeSet<String>) {
    match ty {
        Type::Json => {
            imports.insert("json".into());
        }
        Type::List(inner) | Type::Map(inner) => {
            if **inner == Type::Json {
                imports.insert("json".into());
            } else {
                collect_imports(spec, module, inner, imports);
            }
        }
        Type::Enum(name) | Type::Struct(name) => {
            let proto_visible = matches!(ty, Type::Struct(_))
                || spec.enum_named(name).is_some_and(Enum::is_proto_enum);
            if let Some(m) = spec.module_of(name)
                && m.name != module.name
                && proto_visible
            {
                imports.insert(m.name.clone());
            }
        }
        Type::String | Type::Bool | Type::I32 | Type::I64 | Type::F64 => {}
    }
}

/// The protobuf name of an enum value: `SESSION_DIAL_STATE_NONE`.
pub fn enum_value_name(e: &Enum, variant: &str) -> String {
    format!(
        "{}_{}",
        to_shouty_snake_case(&e.name),
        to_shouty_snake_case(variant)
    )
}

fn enum_def(out: &mut String, e: &Enum) {
    comment(out, "", &e.doc);
    let _ = writeln!(out, "enum {} {{", e.name);
    if e.needs_unspecified() {
        out.push_str("  // Not set: never valid where a value is required.\n");
        let _ = writeln!(out, "  {} = 0;", enum_value_name(e, "Unspecified"));
    }
    for v in &e.values {
        comment(out, "  ", &v.doc);
        let _ = writeln!(out, "  {} = {};", enum_value_name(e, &v.name), v.proto);
    }
    out.push_str("}\n\n");
}

fn comment(out: &mut String, indent: &str, doc: &str) {
    for line in doc.trim().lines() {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{indent}//");
        } else {
            let _ = writeln!(out, "{indent}// {line}");
        }
    }
}
