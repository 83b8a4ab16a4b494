//! The parameters of a GWS operation: a JSON object `{"operationName": ..., ...}`.
//!
//! Read leniently where GWS is (unknown fields are ignored; `null` is the same as absent), and
//! strictly about types: a parameter of the wrong JSON type is refused as an invalid parameter,
//! never coerced. Missing and invalid parameters are reported as the core's
//! `MissingParameter` / `InvalidParameter`, so they land in the one error table.

use confer_core::{DomainError, MessageParameters, UserData};
use serde_json::{Map, Value};

use crate::error::GwsError;

/// How much of a bad value an error message quotes.
const QUOTE_LIMIT: usize = 80;

#[derive(Debug, Clone, Default)]
pub struct Params {
    map: Map<String, Value>,
}

fn quote(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= QUOTE_LIMIT {
        text
    } else {
        let cut: String = text.chars().take(QUOTE_LIMIT).collect();
        format!("{cut}...")
    }
}

fn wrong_type(parameter: &'static str, value: &Value, expected: &'static str) -> GwsError {
    GwsError::Domain(DomainError::InvalidParameter {
        parameter,
        value: quote(value),
        expected,
    })
}

fn missing(parameter: &'static str) -> GwsError {
    GwsError::Domain(DomainError::MissingParameter { parameter })
}

impl Params {
    /// Parses a request body; an empty body is an empty object.
    pub fn parse(body: &[u8]) -> Result<Self, GwsError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let value: Value =
            serde_json::from_slice(body).map_err(|e| GwsError::MalformedJson(e.to_string()))?;
        match value {
            Value::Object(map) => Ok(Self { map }),
            _ => Err(GwsError::NotAnObject),
        }
    }

    /// The object, for fingerprints.
    pub fn as_value(&self) -> Value {
        Value::Object(self.map.clone())
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|value| !value.is_null())
    }

    /// `operationName`.
    pub fn operation(&self) -> Result<&str, GwsError> {
        self.required_str("operationName")
    }

    /// An optional string parameter.
    pub fn optional_str(&self, name: &'static str) -> Result<Option<&str>, GwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(wrong_type(name, other, "a string")),
        }
    }

    /// A string parameter that must be given and not blank.
    pub fn required_str(&self, name: &'static str) -> Result<&str, GwsError> {
        self.optional_str(name)?
            .filter(|text| !text.trim().is_empty())
            .ok_or_else(|| missing(name))
    }

    /// `destination.phoneNumber` (`Dial`, `SingleStepConference`).
    pub fn destination_phone_number(&self) -> Result<String, GwsError> {
        const PARAMETER: &str = "destination.phoneNumber";
        let destination = match self.get("destination") {
            None => return Err(missing(PARAMETER)),
            Some(Value::Object(destination)) => destination,
            Some(other) => {
                return Err(wrong_type(
                    "destination",
                    other,
                    "an object such as {\"phoneNumber\":\"15002\"}",
                ));
            }
        };
        match destination.get("phoneNumber") {
            Some(Value::String(number)) if !number.trim().is_empty() => {
                Ok(number.trim().to_owned())
            }
            None | Some(Value::Null) | Some(Value::String(_)) => Err(missing(PARAMETER)),
            Some(other) => Err(wrong_type(PARAMETER, other, "a string")),
        }
    }

    /// `userData`: an optional object, kept in the order given.
    pub fn user_data(&self) -> Result<UserData, GwsError> {
        match self.get("userData") {
            None => Ok(UserData::new()),
            Some(Value::Object(pairs)) => Ok(pairs
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()),
            Some(other) => Err(wrong_type("userData", other, "an object")),
        }
    }

    /// `text`, `messageType`, `treatAs` of chat operations (validated by the core).
    pub fn message(&self) -> Result<MessageParameters, GwsError> {
        Ok(MessageParameters {
            text: self.optional_str("text")?.map(str::to_owned),
            message_type: self.optional_str("messageType")?.map(str::to_owned),
            treat_as: self.optional_str("treatAs")?.map(str::to_owned),
        })
    }
}

/// Objects with their keys sorted, at every depth: the same request written with other
/// whitespace or key order has the same text (for `Idempotency-Key` fingerprints).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(key) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(error: GwsError) -> (i32, u16) {
        let codes = error.codes();
        (codes.status.code(), codes.http)
    }

    #[test]
    fn bodies() {
        assert!(Params::parse(b"").is_ok());
        assert!(Params::parse(b"  \n").is_ok());
        assert_eq!(codes(Params::parse(b"{").unwrap_err()), (10, 400));
        assert_eq!(codes(Params::parse(b"[1]").unwrap_err()), (10, 400));
        assert_eq!(codes(Params::parse(b"\"x\"").unwrap_err()), (10, 400));
        assert_eq!(codes(Params::parse(&[0xff, 0xfe]).unwrap_err()), (10, 400));
    }

    #[test]
    fn parameters_by_type() {
        let params = Params::parse(
            br#"{"operationName":"X","participant":15001,"blank":" ","nothing":null,
                "destination":{"phoneNumber":"15002"},"userData":{"b":1,"a":2}}"#,
        )
        .unwrap();
        assert_eq!(params.operation().unwrap(), "X");
        assert_eq!(
            codes(params.required_str("participant").unwrap_err()),
            (10, 400)
        );
        assert_eq!(codes(params.required_str("blank").unwrap_err()), (1, 400));
        assert_eq!(codes(params.required_str("nothing").unwrap_err()), (1, 400));
        assert_eq!(codes(params.required_str("absent").unwrap_err()), (1, 400));
        assert_eq!(params.destination_phone_number().unwrap(), "15002");
        let data = params.user_data().unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["b", "a"], "order is kept");
        let bad = Params::parse(br#"{"destination":"15002","userData":[1]}"#).unwrap();
        assert_eq!(
            codes(bad.destination_phone_number().unwrap_err()),
            (10, 400)
        );
        assert_eq!(codes(bad.user_data().unwrap_err()), (10, 400));
        assert_eq!(codes(Params::default().operation().unwrap_err()), (1, 400));
    }

    #[test]
    fn canonical_text_ignores_key_order_and_spacing() {
        let a = json!({"b": [1, {"y": 2, "x": 1}], "a": "t"});
        let b: Value = serde_json::from_str(r#"{ "a":"t", "b":[1,{"x":1,"y":2}] }"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&a), r#"{"a":"t","b":[1,{"x":1,"y":2}]}"#);
    }
}
