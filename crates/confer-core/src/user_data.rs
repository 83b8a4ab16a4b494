//! GWS `userData`: key/value pairs attached to a call or chat, kept in the order
//! they were given.
//!
//! The order matters because clients and the seed documents show the pairs in
//! the order the routing strategy attached them. The core keeps its own ordered
//! list instead of enabling serde_json's `preserve_order` feature, which would
//! change map ordering for every crate of the workspace.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Ordered map from key to JSON value; serialized as a JSON object in that order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserData(Vec<(String, Value)>);

impl UserData {
    /// No pairs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`: a key already present keeps its position.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(existing, _)| *existing == key) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes `key`, returning its value if it was present.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let position = self.0.iter().position(|(existing, _)| existing == key)?;
        Some(self.0.remove(position).1)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(existing, _)| existing == key)
            .map(|(_, value)| value)
    }

    /// The pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(key, value)| (key.as_str(), value))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(key, _)| key.as_str())
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for UserData {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(pairs: I) -> Self {
        let mut data = UserData::new();
        for (key, value) in pairs {
            data.insert(key, value);
        }
        data
    }
}

impl Serialize for UserData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for UserData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(UserDataVisitor)
    }
}

struct UserDataVisitor;

impl<'de> Visitor<'de> for UserDataVisitor {
    type Value = UserData;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an object of user data pairs")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UserData, A::Error> {
        let mut data = UserData::new();
        while let Some((key, value)) = access.next_entry::<String, Value>()? {
            data.insert(key, value);
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_insertion_order_through_json() {
        let data: UserData = [("b", json!(1)), ("a", json!("x")), ("c", Value::Null)]
            .into_iter()
            .collect();
        let text = serde_json::to_string(&data).unwrap_or_default();
        assert_eq!(text, r#"{"b":1,"a":"x","c":null}"#);
        let back: Result<UserData, _> = serde_json::from_str(&text);
        assert_eq!(back.ok(), Some(data));
    }

    #[test]
    fn insert_replaces_in_place_and_remove_removes() {
        let mut data = UserData::new();
        data.insert("a", json!(1));
        data.insert("b", json!(2));
        data.insert("a", json!(3));
        assert_eq!(data.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(data.get("a"), Some(&json!(3)));
        assert_eq!(data.remove("a"), Some(json!(3)));
        assert_eq!(data.remove("a"), None);
        assert_eq!(data.len(), 1);
    }
}
