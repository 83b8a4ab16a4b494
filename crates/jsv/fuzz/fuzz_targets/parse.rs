//! Feeds arbitrary bytes to `jsv::from_slice` for a realistic typed model
//! and for generic targets. The reader must never panic, and whatever it
//! accepts must write back out and read back in as the same value.

#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum DialState {
    None,
    Dialing,
    #[serde(rename = "InProgress")]
    Connected,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum CallState {
    Ringing,
    Connected,
    Disconnected,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Role {
    Host,
    Guest,
    Custom(String),
    Weighted { name: String, weight: f64 },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: u32,
    role: Option<Role>,
    #[serde(default)]
    tags: Vec<Option<String>>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct BreadcrumbItem {
    id: String,
    name: String,
}

/// Shaped like Evo Voice's `SessionInfo`, plus the other kinds of field a
/// Confer request carries.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Session {
    dial_state: Option<DialState>,
    call_state: Option<CallState>,
    account_id: Option<String>,
    #[serde(default)]
    customer_breadcrumb: Vec<BreadcrumbItem>,
    #[serde(default)]
    ended: bool,
    duration: Option<f64>,
    attempts: Option<i64>,
    #[serde(default)]
    application_data: HashMap<String, String>,
    #[serde(default)]
    members: Vec<Member>,
    matrix: Option<Vec<Vec<i32>>>,
    pair: Option<(String, bool)>,
}

/// Reads `data` as a `T`; if that works, writes it (compact and pretty) and
/// checks both texts read back as the same value.
fn check<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) {
    let Ok(value) = jsv::from_slice::<T>(data) else {
        return;
    };
    for written in [jsv::to_string(&value), jsv::to_string_pretty(&value)] {
        let text = match written {
            Ok(text) => text,
            Err(error) => panic!("{value:?} was read but cannot be written: {error}"),
        };
        match jsv::from_str::<T>(&text) {
            Ok(reread) => assert_eq!(reread, value, "{text:?} read back differently"),
            Err(error) => panic!("{text:?}, written from {value:?}, does not read back: {error}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Session>(data);
    check::<serde_json::Value>(data);
    check::<BTreeMap<String, serde_json::Value>>(data);
    check::<Vec<Option<Role>>>(data);
});
