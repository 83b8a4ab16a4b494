//! Property tests: every value reads back as itself, and no input, however
//! broken, makes the reader panic.

use std::collections::{BTreeMap, HashMap};

use proptest::collection::{btree_map, hash_map, vec};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
enum State {
    #[serde(rename = "None")]
    Idle,
    #[serde(rename = "in-progress")]
    InProgress,
    #[serde(rename = "Done, really")]
    Done,
    Failed,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Shape {
    Point,
    Circle(f64),
    Line(i32, String),
    Rect { width: u32, label: Option<String> },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: String,
    display_name: Option<String>,
    state: State,
    muted: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Child {
    name: String,
    tags: Vec<String>,
    grid: Vec<Vec<i32>>,
    members: Vec<Member>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(rename_all = "camelCase")]
struct Model {
    title: String,
    note: Option<String>,
    flag: bool,
    small: i32,
    big: i64,
    unsigned: u64,
    ratio: f64,
    maybe_ratio: Option<f64>,
    state: State,
    maybe_state: Option<State>,
    members: Vec<Member>,
    labels: BTreeMap<String, String>,
    counters: HashMap<String, i64>,
    sparse: BTreeMap<String, Option<i32>>,
    grid: Vec<Vec<String>>,
    optional_items: Vec<Option<String>>,
    child: Option<Child>,
    shapes: Vec<Shape>,
    pair: (String, u8),
    nothing: (),
}

/// Strings heavy in everything JSV treats specially.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[\"\"':,{}\\[\\] \t\r\na-cA-C0-9é✓日\u{FEFF}\u{a0}]{0,12}",
        1 => any::<String>(),
        1 => Just(String::new()),
        1 => prop_oneof![
            Just("\"".to_owned()),
            Just("\"\"".to_owned()),
            Just(" ".to_owned()),
            Just("True".to_owned()),
            Just("None".to_owned()),
            Just("null".to_owned()),
            Just("{a:b}".to_owned()),
            Just("[,]".to_owned()),
            Just("-0".to_owned()),
        ],
    ]
}

fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

fn state() -> impl Strategy<Value = State> {
    prop_oneof![
        Just(State::Idle),
        Just(State::InProgress),
        Just(State::Done),
        Just(State::Failed),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Point),
        finite_f64().prop_map(Shape::Circle),
        (any::<i32>(), text()).prop_map(|(a, b)| Shape::Line(a, b)),
        (any::<u32>(), proptest::option::of(text()))
            .prop_map(|(width, label)| Shape::Rect { width, label }),
    ]
}

fn member() -> impl Strategy<Value = Member> {
    (text(), proptest::option::of(text()), state(), any::<bool>()).prop_map(
        |(id, display_name, state, muted)| Member {
            id,
            display_name,
            state,
            muted,
        },
    )
}

fn child() -> impl Strategy<Value = Child> {
    (
        text(),
        vec(text(), 0..4),
        vec(vec(any::<i32>(), 0..4), 0..4),
        vec(member(), 0..3),
    )
        .prop_map(|(name, tags, grid, members)| Child {
            name,
            tags,
            grid,
            members,
        })
}

/// A list of options, except the one shape that does not round-trip by
/// design: a single `None`, written `[]` (see the crate docs).
fn optional_items() -> impl Strategy<Value = Vec<Option<String>>> {
    vec(proptest::option::of(text()), 0..5).prop_filter("a lone None is written []", |items| {
        !matches!(items.as_slice(), [None])
    })
}

fn model() -> impl Strategy<Value = Model> {
    let scalars = (
        text(),
        proptest::option::of(text()),
        any::<bool>(),
        any::<i32>(),
        any::<i64>(),
        any::<u64>(),
        finite_f64(),
        proptest::option::of(finite_f64()),
        state(),
        proptest::option::of(state()),
    );
    let collections = (
        vec(member(), 0..4),
        btree_map(text(), text(), 0..4),
        hash_map(text(), any::<i64>(), 0..4),
        btree_map(text(), proptest::option::of(any::<i32>()), 0..4),
        vec(vec(text(), 0..3), 0..3),
        optional_items(),
        proptest::option::of(child()),
        vec(shape(), 0..3),
        (text(), any::<u8>()),
    );
    (scalars, collections).prop_map(
        |(
            (title, note, flag, small, big, unsigned, ratio, maybe_ratio, state, maybe_state),
            (members, labels, counters, sparse, grid, optional_items, child, shapes, pair),
        )| Model {
            title,
            note,
            flag,
            small,
            big,
            unsigned,
            ratio,
            maybe_ratio,
            state,
            maybe_state,
            members,
            labels,
            counters,
            sparse,
            grid,
            optional_items,
            child,
            shapes,
            pair,
            nothing: (),
        },
    )
}

/// Text made of JSV's structural characters and a few letters, more likely
/// than random bytes to get deep into the reader.
fn jsv_like() -> impl Strategy<Value = String> {
    "[\\[\\]{}:,\" \nabT0-9.e-]{0,80}"
}

/// Checks that `text` read as a generic value re-serializes to text that
/// reads back as the same value.
fn check_generic_round_trip(text: &str) -> Result<(), TestCaseError> {
    if let Ok(value) = jsv::from_str::<serde_json::Value>(text) {
        let written = jsv::to_string(&value).map_err(|error| {
            TestCaseError::fail(format!("{text:?} parsed but did not write: {error}"))
        })?;
        let reread: serde_json::Value = jsv::from_str(&written).map_err(|error| {
            TestCaseError::fail(format!("{written:?} did not read back: {error}"))
        })?;
        prop_assert_eq!(reread, value, "{:?} -> {:?}", text, written);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn strings_round_trip(value in text()) {
        let written = jsv::to_string(&value)?;
        prop_assert_eq!(jsv::from_str::<String>(&written)?, value);
    }

    #[test]
    fn models_round_trip(value in model()) {
        let written = jsv::to_string(&value)?;
        let read: Model = jsv::from_str(&written)
            .map_err(|error| TestCaseError::fail(format!("{written:?}: {error}")))?;
        prop_assert_eq!(read, value);
    }

    #[test]
    fn models_round_trip_through_pretty_text(value in model()) {
        let written = jsv::to_string_pretty(&value)?;
        let read: Model = jsv::from_str(&written)
            .map_err(|error| TestCaseError::fail(format!("{written:?}: {error}")))?;
        prop_assert_eq!(read, value);
    }

    #[test]
    fn lists_of_maps_round_trip(value in vec(btree_map(text(), vec(text(), 0..3), 0..3), 0..4)) {
        let written = jsv::to_string(&value)?;
        prop_assert_eq!(jsv::from_str::<Vec<BTreeMap<String, Vec<String>>>>(&written)?, value);
    }

    #[test]
    fn models_read_as_generic_values_round_trip(value in model()) {
        let written = jsv::to_string(&value)?;
        check_generic_round_trip(&written)?;
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
        let _ = jsv::from_slice::<Model>(&bytes);
        let _ = jsv::from_slice::<serde_json::Value>(&bytes);
        let _ = jsv::from_slice::<BTreeMap<String, Vec<Option<i64>>>>(&bytes);
    }

    #[test]
    fn jsv_like_text_never_panics_and_generic_parses_round_trip(text in jsv_like()) {
        let _ = jsv::from_str::<Model>(&text);
        let _ = jsv::from_str::<Vec<Shape>>(&text);
        let _ = jsv::from_str::<HashMap<String, Option<f64>>>(&text);
        check_generic_round_trip(&text)?;
    }

    #[test]
    fn damaged_valid_text_never_panics(
        value in model(),
        cut in any::<prop::sample::Index>(),
        splice in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'"'), Just(b'{'), Just(b'}'), Just(b'['), Just(b']'), Just(b':'), Just(b','), any::<u8>()],
    ) {
        let mut bytes = jsv::to_string(&value)?.into_bytes();
        let at = splice.index(bytes.len() + 1);
        bytes.insert(at, byte);
        if let Ok(read) = jsv::from_slice::<Model>(&bytes) {
            // Whatever it read must itself round-trip.
            let written = jsv::to_string(&read)?;
            prop_assert_eq!(jsv::from_str::<Model>(&written)?, read);
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = jsv::from_slice::<Model>(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            check_generic_round_trip(text)?;
        }
    }
}
