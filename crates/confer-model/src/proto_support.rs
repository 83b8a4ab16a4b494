//! What the generated conversions share: JSON values ⇄ `confer.v1.JsonValue`, list and map
//! helpers, and [`ProtoError`], which names the path of the field that could not be converted.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

use crate::proto::{JsonField, JsonList, JsonNull, JsonObject, json_value::Kind};

/// A protobuf message that has no model value: a required field is missing, or an enum number
/// is unknown. `path` says where (`call.participants[1].phoneNumber`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct ProtoError {
    pub path: String,
    pub problem: String,
}

impl ProtoError {
    fn new(problem: impl Into<String>) -> Self {
        Self {
            path: String::new(),
            problem: problem.into(),
        }
    }

    /// Prefixes the path with the field the error happened in.
    pub fn at(mut self, field: impl AsRef<str>) -> Self {
        let field = field.as_ref();
        self.path = match (self.path.is_empty(), self.path.starts_with('[')) {
            (true, _) => field.to_owned(),
            (false, true) => format!("{field}{}", self.path),
            (false, false) => format!("{field}.{}", self.path),
        };
        self
    }

    pub fn unspecified(enum_name: &str) -> Self {
        Self::new(format!(
            "{enum_name} is unspecified (0), which is never a valid value"
        ))
    }
}

/// A required message field.
pub fn required<T>(field: &str, value: Option<T>) -> Result<T, ProtoError> {
    value.ok_or_else(|| ProtoError::new("required field is missing").at(field))
}

/// A protobuf enum number to its model enum.
pub fn enum_from_proto<P, M>(number: i32) -> Result<M, ProtoError>
where
    P: TryFrom<i32>,
    M: TryFrom<P, Error = ProtoError>,
{
    let known = P::try_from(number).map_err(|_| {
        ProtoError::new(format!(
            "{number} is not a value of {}",
            std::any::type_name::<M>()
                .rsplit("::")
                .next()
                .unwrap_or("the enum")
        ))
    })?;
    M::try_from(known)
}

pub fn list_from_proto<P, M>(
    field: &str,
    items: Vec<P>,
    convert: impl Fn(P) -> Result<M, ProtoError>,
) -> Result<Vec<M>, ProtoError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| convert(item).map_err(|e| e.at(format!("[{i}]")).at(field)))
        .collect()
}

pub fn map_from_proto<P, M>(
    field: &str,
    items: BTreeMap<String, P>,
    convert: impl Fn(P) -> Result<M, ProtoError>,
) -> Result<IndexMap<String, M>, ProtoError> {
    items
        .into_iter()
        .map(|(key, item)| {
            let converted = convert(item).map_err(|e| e.at(&key).at(field))?;
            Ok((key, converted))
        })
        .collect()
}

/// Any JSON value to protobuf, exactly: integers stay integers, object keys keep their order.
pub fn json_to_proto(value: Value) -> crate::proto::JsonValue {
    let kind = match value {
        Value::Null => Kind::NullValue(JsonNull::Value as i32),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Kind::IntValue(i)
            } else if let Some(u) = n.as_u64() {
                Kind::UintValue(u)
            } else {
                // serde_json numbers are i64, u64 or finite f64.
                Kind::DoubleValue(n.as_f64().unwrap_or_default())
            }
        }
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(JsonList {
            values: items.into_iter().map(json_to_proto).collect(),
        }),
        Value::Object(map) => Kind::ObjectValue(json_object_to_proto(map)),
    };
    crate::proto::JsonValue { kind: Some(kind) }
}

/// A JSON object (as a map in any order-keeping form) to protobuf.
pub fn json_object_to_proto(map: impl IntoIterator<Item = (String, Value)>) -> JsonObject {
    JsonObject {
        fields: map
            .into_iter()
            .map(|(key, value)| JsonField {
                key,
                value: Some(json_to_proto(value)),
            })
            .collect(),
    }
}

pub fn json_from_proto(value: crate::proto::JsonValue) -> Result<Value, ProtoError> {
    Ok(match value.kind {
        None => return Err(ProtoError::new("JsonValue has no kind set")),
        Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::IntValue(i)) => Value::Number(i.into()),
        Some(Kind::UintValue(u)) => Value::Number(u.into()),
        Some(Kind::DoubleValue(d)) => Value::Number(
            Number::from_f64(d)
                .ok_or_else(|| ProtoError::new(format!("{d} is not a JSON number")))?,
        ),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => Value::Array(
            list.values
                .into_iter()
                .enumerate()
                .map(|(i, v)| json_from_proto(v).map_err(|e| e.at(format!("[{i}]"))))
                .collect::<Result<_, _>>()?,
        ),
        Some(Kind::ObjectValue(object)) => Value::Object(
            json_object_from_proto(object)?
                .into_iter()
                .collect::<Map<_, _>>(),
        ),
    })
}

pub fn json_object_from_proto(object: JsonObject) -> Result<IndexMap<String, Value>, ProtoError> {
    object
        .fields
        .into_iter()
        .map(|field| {
            let value = required("value", field.value)
                .and_then(json_from_proto)
                .map_err(|e| e.at(&field.key))?;
            Ok((field.key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_survives_protobuf_exactly() {
        let value = json!({
            "z": 1, "a": -7, "big": u64::MAX, "float": 1.5, "whole_float": 2.0,
            "null": null, "list": [true, "x", {"nested": []}], "empty": {}
        });
        let back = json_from_proto(json_to_proto(value.clone())).unwrap();
        assert_eq!(back, value);
        // Key order and the integer/float distinction are kept, not just equality.
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
    }

    #[test]
    fn errors_name_the_path() {
        let object = JsonObject {
            fields: vec![JsonField {
                key: "outer".into(),
                value: Some(crate::proto::JsonValue {
                    kind: Some(Kind::ListValue(JsonList {
                        values: vec![crate::proto::JsonValue { kind: None }],
                    })),
                }),
            }],
        };
        let err = json_object_from_proto(object).unwrap_err();
        assert_eq!(err.to_string(), "outer[0]: JsonValue has no kind set");
    }
}
