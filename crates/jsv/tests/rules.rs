//! One test (or a few) per rule of the format, through the public API.

use std::collections::{BTreeMap, HashMap};

use jsv::Category;
use serde::{Deserialize, Serialize};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Reads `text` as a `T`, expecting an error, and returns it.
fn read_error<T: for<'de> Deserialize<'de> + std::fmt::Debug>(text: &str) -> jsv::Error {
    match jsv::from_str::<T>(text) {
        Ok(value) => panic!("{text:?} should not parse, but gave {value:?}"),
        Err(error) => error,
    }
}

// ----- strings ---------------------------------------------------------

#[test]
fn plain_strings_are_bare() -> TestResult {
    assert_eq!(jsv::to_string("hello world")?, "hello world");
    assert_eq!(jsv::to_string("héllo ✓ 日本")?, "héllo ✓ 日本");
    assert_eq!(jsv::from_str::<String>("hello world")?, "hello world");
    Ok(())
}

#[test]
fn strings_with_special_characters_are_quoted() -> TestResult {
    let cases = [
        ("a,b", r#""a,b""#),
        ("a:b", r#""a:b""#),
        ("{x}", r#""{x}""#),
        ("[x]", r#""[x]""#),
        ("a}b", r#""a}b""#),
        ("a]b", r#""a]b""#),
        ("line\nbreak", "\"line\nbreak\""),
        ("cr\rhere", "\"cr\rhere\""),
    ];
    for (value, expected) in cases {
        let written = jsv::to_string(value)?;
        assert_eq!(written, expected, "writing {value:?}");
        assert_eq!(
            jsv::from_str::<String>(&written)?,
            value,
            "reading {written:?}"
        );
    }
    Ok(())
}

#[test]
fn quotes_inside_strings_are_doubled() -> TestResult {
    assert_eq!(jsv::to_string(r#"say "hi""#)?, r#""say ""hi""""#);
    assert_eq!(jsv::to_string(r#"""#)?, r#""""""#);
    assert_eq!(jsv::from_str::<String>(r#""say ""hi""""#)?, r#"say "hi""#);
    assert_eq!(jsv::from_str::<String>(r#""""""#)?, r#"""#);
    Ok(())
}

#[test]
fn empty_string_is_two_quotes() -> TestResult {
    assert_eq!(jsv::to_string("")?, r#""""#);
    assert_eq!(jsv::from_str::<String>(r#""""#)?, "");
    assert_eq!(
        jsv::from_str::<Option<String>>(r#""""#)?,
        Some(String::new())
    );
    Ok(())
}

#[test]
fn strings_with_outer_whitespace_are_quoted_and_kept() -> TestResult {
    for value in [" lead", "trail ", "\ttab", " ", "\u{FEFF}bom"] {
        let written = jsv::to_string(value)?;
        assert!(
            written.starts_with('"'),
            "{value:?} was written {written:?}"
        );
        assert_eq!(jsv::from_str::<String>(&written)?, value);
    }
    Ok(())
}

#[test]
fn whitespace_around_bare_scalars_is_trimmed() -> TestResult {
    assert_eq!(jsv::from_str::<String>("  String \r\n")?, "String");
    assert_eq!(jsv::from_str::<Vec<String>>("[ a b , c ]")?, ["a b", "c"]);
    Ok(())
}

#[test]
fn bare_text_after_its_first_character_is_lenient() -> TestResult {
    // ServiceStack reads a bare value up to the next `,`, `}` or `]`.
    let map: BTreeMap<String, String> = jsv::from_str("{time:12:30,url:http://x/y?a=b}")?;
    assert_eq!(map["time"], "12:30");
    assert_eq!(map["url"], "http://x/y?a=b");
    Ok(())
}

#[test]
fn keys_are_escaped_like_strings() -> TestResult {
    let map = BTreeMap::from([
        ("a:b".to_owned(), 1),
        (String::new(), 2),
        ("plain".to_owned(), 3),
    ]);
    let written = jsv::to_string(&map)?;
    assert_eq!(written, r#"{"":2,"a:b":1,plain:3}"#);
    assert_eq!(jsv::from_str::<BTreeMap<String, i32>>(&written)?, map);
    Ok(())
}

// ----- null / None -----------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
struct WithOptions {
    name: Option<String>,
    count: Option<i32>,
    tags: Option<Vec<String>>,
    unit: (),
}

#[test]
fn none_fields_are_omitted() -> TestResult {
    let value = WithOptions::default();
    assert_eq!(jsv::to_string(&value)?, "{unit:}");
    assert_eq!(jsv::from_str::<WithOptions>("{unit:}")?, value);
    let value = WithOptions {
        name: Some("x".into()),
        ..WithOptions::default()
    };
    assert_eq!(jsv::to_string(&value)?, "{name:x,unit:}");
    Ok(())
}

#[test]
fn missing_option_fields_read_as_none() -> TestResult {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Sparse {
        name: Option<String>,
        count: Option<i32>,
    }
    let value: Sparse = jsv::from_str("{}")?;
    assert_eq!(
        value,
        Sparse {
            name: None,
            count: None
        }
    );
    let value: Sparse = jsv::from_str("{count:,name:\"\"}")?;
    assert_eq!(
        value,
        Sparse {
            name: Some(String::new()),
            count: None
        }
    );
    Ok(())
}

#[test]
fn none_in_lists_and_maps_is_an_empty_value() -> TestResult {
    let list = vec![Some("a".to_owned()), None, Some(String::new()), None];
    let written = jsv::to_string(&list)?;
    assert_eq!(written, r#"[a,,"",]"#);
    assert_eq!(jsv::from_str::<Vec<Option<String>>>(&written)?, list);

    let map = BTreeMap::from([("k".to_owned(), None), ("v".to_owned(), Some(1))]);
    let written = jsv::to_string(&map)?;
    assert_eq!(written, "{k:,v:1}");
    assert_eq!(
        jsv::from_str::<BTreeMap<String, Option<i32>>>(&written)?,
        map
    );
    Ok(())
}

#[test]
fn a_list_of_one_none_reads_back_empty() -> TestResult {
    // The documented exception to round-tripping, shared with ServiceStack.
    assert_eq!(jsv::to_string(&vec![None::<i32>])?, "[]");
    assert_eq!(jsv::from_str::<Vec<Option<i32>>>("[]")?, vec![]);
    assert_eq!(jsv::from_str::<Vec<Option<i32>>>("[,]")?, vec![None, None]);
    Ok(())
}

// ----- booleans and numbers ---------------------------------------------

#[test]
fn booleans_are_dotnet_cased_and_read_in_any_case() -> TestResult {
    assert_eq!(jsv::to_string(&true)?, "True");
    assert_eq!(jsv::to_string(&false)?, "False");
    for (text, expected) in [
        ("True", true),
        ("true", true),
        ("TRUE", true),
        ("False", false),
        ("false", false),
        (" fAlSe ", false),
    ] {
        assert_eq!(jsv::from_str::<bool>(text)?, expected, "{text}");
    }
    let error = read_error::<bool>("yes");
    assert_eq!(error.category(), Category::Data);
    assert!(
        error
            .to_string()
            .contains("expected True or False, found `yes`"),
        "{error}"
    );
    Ok(())
}

#[test]
fn numbers_use_the_invariant_culture() -> TestResult {
    assert_eq!(jsv::to_string(&-42_i32)?, "-42");
    assert_eq!(jsv::to_string(&u64::MAX)?, "18446744073709551615");
    assert_eq!(jsv::to_string(&i128::MIN)?, i128::MIN.to_string());
    assert_eq!(jsv::to_string(&1.5_f64)?, "1.5");
    assert_eq!(jsv::to_string(&1234567.25_f64)?, "1234567.25");
    assert_eq!(jsv::to_string(&1.0_f64)?, "1");
    assert_eq!(jsv::to_string(&1e300_f64)?, "1e300");
    assert_eq!(jsv::to_string(&1.5e-7_f64)?, "1.5e-7");
    assert_eq!(jsv::to_string(&0.1_f32)?, "0.1");
    assert_eq!(jsv::from_str::<f64>("1E+300")?, 1e300);
    assert_eq!(jsv::from_str::<i64>(" 7 ")?, 7);
    assert_eq!(jsv::from_str::<u8>("\"200\"")?, 200);
    Ok(())
}

#[test]
fn floats_round_trip_exactly() -> TestResult {
    for value in [
        0.1,
        -0.0,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
        5e-324,
        123_456_789.123_456_79,
        1e16,
        1e16 - 2.0,
    ] {
        let written = jsv::to_string(&value)?;
        let read = jsv::from_str::<f64>(&written)?;
        assert_eq!(
            read.to_bits(),
            value.to_bits(),
            "{value:e} written {written}"
        );
    }
    for value in [0.1_f32, f32::MAX, f32::MIN_POSITIVE, 3.4028235e38] {
        let written = jsv::to_string(&value)?;
        assert_eq!(jsv::from_str::<f32>(&written)?.to_bits(), value.to_bits());
    }
    Ok(())
}

#[test]
fn non_finite_floats_are_errors_both_ways() {
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = jsv::to_string(&value).expect_err("non-finite float must not be written");
        assert!(error.to_string().contains("non-finite"), "{error}");
    }
    assert!(jsv::to_string(&f32::NAN).is_err());
    for text in ["NaN", "inf", "-Infinity", "1e999"] {
        let error = read_error::<f64>(text);
        assert!(error.to_string().contains("not a finite"), "{error}");
    }
}

#[test]
fn integer_errors_say_what_and_where() {
    let error = read_error::<Vec<u8>>("[1, 2, 300]");
    assert_eq!(
        error.to_string(),
        "integer `300` is out of range for u8 (at byte 7, path [2])"
    );
    let error = read_error::<i32>("twelve");
    assert_eq!(
        error.to_string(),
        "expected an integer (i32), found `twelve` (at byte 0)"
    );
    let error = read_error::<i32>("");
    assert!(
        error.to_string().contains("found an empty value"),
        "{error}"
    );
}

// ----- enums ------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
enum DialState {
    None,
    Dialing,
    #[serde(rename = "InProgress")]
    Connected,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Point,
    Circle(f64),
    Line(i32, i32),
    Rect { width: u32, height: u32 },
    Maybe(Option<String>),
}

#[test]
fn unit_variants_are_their_renamed_name() -> TestResult {
    assert_eq!(jsv::to_string(&DialState::None)?, "None");
    assert_eq!(jsv::to_string(&DialState::Connected)?, "InProgress");
    assert_eq!(
        jsv::from_str::<DialState>("InProgress")?,
        DialState::Connected
    );
    assert_eq!(jsv::from_str::<DialState>(" dialing ")?, DialState::Dialing);
    assert_eq!(
        jsv::from_str::<Option<DialState>>("None")?,
        Some(DialState::None)
    );
    let error = read_error::<DialState>("Hangup");
    assert!(
        error.to_string().contains("unknown variant `Hangup`"),
        "{error}"
    );
    Ok(())
}

#[test]
fn variants_with_data_are_one_entry_objects() -> TestResult {
    let cases = [
        (Shape::Point, "Point"),
        (Shape::Circle(1.5), "{Circle:1.5}"),
        (Shape::Line(1, -2), "{Line:[1,-2]}"),
        (
            Shape::Rect {
                width: 3,
                height: 4,
            },
            "{Rect:{width:3,height:4}}",
        ),
        (Shape::Maybe(None), "{Maybe:}"),
        (Shape::Maybe(Some("a,b".into())), r#"{Maybe:"a,b"}"#),
    ];
    for (value, expected) in cases {
        let written = jsv::to_string(&value)?;
        assert_eq!(written, expected);
        assert_eq!(jsv::from_str::<Shape>(&written)?, value);
    }
    assert_eq!(
        jsv::from_str::<Shape>("{ rect : { WIDTH: 3, Height: 4 } }")?,
        Shape::Rect {
            width: 3,
            height: 4
        }
    );
    assert_eq!(jsv::from_str::<Shape>("{Point:}")?, Shape::Point);
    let error = read_error::<Shape>("Circle");
    assert!(
        error.to_string().contains("written `{Circle:...}`"),
        "{error}"
    );
    let error = read_error::<Shape>("{Circle:1,Point:}");
    assert!(error.to_string().contains("expected '}'"), "{error}");
    Ok(())
}

// ----- unit, tuples, bytes, newtypes --------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Marker;

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Meters(f64);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Pair(i32, String);

#[test]
fn unit_tuples_newtypes_and_bytes() -> TestResult {
    assert_eq!(jsv::to_string(&())?, "");
    jsv::from_str::<()>("")?;
    jsv::from_str::<()>("  ")?;
    assert_eq!(jsv::to_string(&Marker)?, "");
    assert_eq!(jsv::from_str::<Marker>("")?, Marker);
    assert_eq!(jsv::to_string(&Meters(2.5))?, "2.5");
    assert_eq!(jsv::from_str::<Meters>("2.5")?, Meters(2.5));
    assert_eq!(jsv::to_string(&(1, "a", true))?, "[1,a,True]");
    assert_eq!(
        jsv::from_str::<(i32, String, bool)>("[1,a,True]")?,
        (1, "a".to_owned(), true)
    );
    assert_eq!(jsv::to_string(&Pair(1, "x y".into()))?, "[1,x y]");
    assert_eq!(jsv::from_str::<Pair>("[1,x y]")?, Pair(1, "x y".into()));

    let bytes = serde_bytes::ByteBuf::from(vec![0_u8, 1, 2, 254, 255]);
    let written = jsv::to_string(&bytes)?;
    assert_eq!(written, "AAEC/v8=");
    assert_eq!(jsv::from_str::<serde_bytes::ByteBuf>(&written)?, bytes);
    assert_eq!(jsv::to_string(&serde_bytes::ByteBuf::new())?, r#""""#);
    assert!(jsv::from_str::<serde_bytes::ByteBuf>("not base64!").is_err());
    assert_eq!(jsv::to_string(&vec![1_u8, 2])?, "[1,2]");
    Ok(())
}

#[test]
fn tuples_refuse_extra_or_missing_items() {
    let error = read_error::<(i32, i32)>("[1,2,3]");
    assert!(error.to_string().contains("more items"), "{error}");
    let error = read_error::<(i32, i32)>("[1]");
    assert!(error.to_string().contains("invalid length 1"), "{error}");
}

#[test]
fn chars() -> TestResult {
    assert_eq!(jsv::to_string(&'x')?, "x");
    assert_eq!(jsv::to_string(&',')?, r#"",""#);
    assert_eq!(jsv::from_str::<char>(r#"",""#)?, ',');
    assert!(jsv::from_str::<char>("ab").is_err());
    Ok(())
}

// ----- maps -------------------------------------------------------------

#[test]
fn maps_with_scalar_keys() -> TestResult {
    let map = BTreeMap::from([(1, "one".to_owned()), (-2, "minus two".to_owned())]);
    let written = jsv::to_string(&map)?;
    assert_eq!(written, "{-2:minus two,1:one}");
    assert_eq!(jsv::from_str::<BTreeMap<i32, String>>(&written)?, map);

    let by_state = HashMap::from([(DialState::Dialing, 1)]);
    let written = jsv::to_string(&by_state)?;
    assert_eq!(written, "{Dialing:1}");
    let read: HashMap<DialState, i32> = jsv::from_str(&written)?;
    assert_eq!(read, by_state);

    let by_flag = BTreeMap::from([(true, 1)]);
    assert_eq!(jsv::to_string(&by_flag)?, "{True:1}");
    assert_eq!(jsv::from_str::<BTreeMap<bool, i32>>("{true:1}")?, by_flag);
    Ok(())
}

#[test]
fn non_scalar_map_keys_are_refused() {
    let map = BTreeMap::from([(vec![1], 1)]);
    let error = jsv::to_string(&map).expect_err("a list key cannot be written");
    assert!(error.to_string().contains("a map key must be"), "{error}");
    let map = BTreeMap::from([(Some(1), 1), (None, 2)]);
    assert!(jsv::to_string(&map).is_err());
}

impl Eq for DialState {}
impl std::hash::Hash for DialState {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
    }
}

// ----- reading structs ----------------------------------------------------

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
struct Member {
    id: String,
    display_name: Option<String>,
    role: Option<Role>,
    #[serde(default)]
    muted: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
enum Role {
    Host,
    Guest,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Default)]
struct Conference {
    name: String,
    members: Vec<Member>,
}

#[test]
fn keys_match_fields_ignoring_case_exact_first() -> TestResult {
    let member: Member = jsv::from_str("{ID:7,DisplayName:Ada,ROLE:host,Muted:TRUE}")?;
    assert_eq!(
        member,
        Member {
            id: "7".into(),
            display_name: Some("Ada".into()),
            role: Some(Role::Host),
            muted: true
        }
    );

    #[derive(Deserialize, Debug)]
    struct TwoCases {
        #[serde(rename = "id")]
        lower: i32,
        #[serde(rename = "ID")]
        upper: i32,
    }
    let both: TwoCases = jsv::from_str("{ID:1,id:2}")?;
    assert_eq!((both.lower, both.upper), (2, 1));
    Ok(())
}

#[test]
fn unknown_keys_are_skipped_with_their_whole_value() -> TestResult {
    let text =
        r#"{id:1,extra:{deep:[1,{x:"a,]}"},[[]]],more:[]},muted:False,tail:"q""q",trailing:}"#;
    let member: Member = jsv::from_str(text)?;
    assert_eq!(member.id, "1");
    assert!(!member.muted);
    Ok(())
}

#[test]
fn denied_unknown_keys_name_the_key() {
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        id: i32,
    }
    let error = read_error::<Strict>("{id:1,bogus:2}");
    assert!(
        error.to_string().contains("unknown field `bogus`"),
        "{error}"
    );
    assert_eq!(error.offset(), Some(6));
}

#[test]
fn whitespace_around_structural_tokens_is_accepted() -> TestResult {
    let text =
        " \r\n{ \tname : Weekly sync ,\n members :\n [\n { id : 1 } ,\r\n{id:\"2\"}\n ]\n}\n\t";
    let conference: Conference = jsv::from_str(text)?;
    assert_eq!(conference.name, "Weekly sync");
    assert_eq!(conference.members.len(), 2);
    assert_eq!(conference.members[1].id, "2");
    Ok(())
}

#[test]
fn errors_name_the_path() {
    let error = read_error::<Conference>("{name:x,members:[{id:1},{id:2},{id:3,role:Owner}]}");
    assert_eq!(error.category(), Category::Data);
    assert_eq!(error.path(), Some("members[2].role"));
    assert_eq!(error.offset(), Some(42));
    assert!(
        error.to_string().starts_with(
            "unknown variant `Owner`, expected `Host` or `Guest` (at byte 42, path members[2].role)"
        ),
        "{error}"
    );

    let error = read_error::<Conference>("{name:x,members:[{id:1},{muted:maybe}]}");
    assert_eq!(error.path(), Some("members[1].muted"));

    let error = read_error::<Conference>("{name:x,members:[{id:1},{muted:True}]}");
    // A missing field is noticed at the end of its object, and reported at
    // the object's start.
    assert!(error.to_string().contains("missing field `id`"), "{error}");
    assert_eq!(error.path(), Some("members[1]"));
    assert_eq!(error.offset(), Some(24));
}

// ----- malformed input ------------------------------------------------------

#[test]
fn trailing_garbage_is_an_error() {
    let error = read_error::<Conference>("{name:x,members:[]} y");
    assert_eq!(error.category(), Category::Syntax);
    assert_eq!(
        error.to_string(),
        "unexpected 'y' after the end of the value (at byte 20)"
    );
    assert!(jsv::from_str::<Vec<i32>>("[1],").is_err());
    assert!(jsv::from_str::<String>("a,b").is_err());
    assert!(jsv::from_str::<String>(r#""a"b"#).is_err());
}

#[test]
fn every_malformed_input_is_a_located_error() {
    let cases: &[(&str, &str)] = &[
        (
            "{name:x",
            "expected ',' or '}' after a value in an object, found end of input",
        ),
        ("{name:x,", "expected a key, found end of input"),
        ("{name:x,}", "expected a key, found '}'"),
        ("{name x}", "expected ':' after a key, found '}'"),
        ("{name:\"x}", "unterminated quoted string"),
        (
            "{name:\"x\"y}",
            "expected ',' or '}' after a value in an object, found 'y'",
        ),
        ("{:x}", "expected a key, found ':'"),
        (
            "{name:x,members:[{id:1}",
            "expected ',' or ']' after an item of a list, found end of input",
        ),
        (
            "{name:x,members:[{id:1}}",
            "expected ',' or ']' after an item of a list, found '}'",
        ),
        ("{name:x,members:{}}", "expected a list, found an object"),
        ("{name:x,members:5}", "expected a list, found `5`"),
        ("{name:x,members:}", "expected a list, found an empty value"),
        ("{name:[a]}", "expected a string, found a list"),
        ("[]", "expected an object, found a list"),
        ("", "expected an object, found end of input"),
        ("}", "expected an object, found an empty value"),
    ];
    for (text, message) in cases {
        let error = read_error::<Conference>(text);
        assert!(
            error.to_string().starts_with(message),
            "{text:?}: {error} should start with {message:?}"
        );
        assert!(error.offset().is_some(), "{text:?}: {error} has no offset");
    }
}

#[test]
fn invalid_utf8_is_an_error_with_offset() {
    let error = jsv::from_slice::<String>(b"ab\xffcd").expect_err("invalid UTF-8");
    assert_eq!(error.to_string(), "input is not valid UTF-8 (at byte 2)");
    assert_eq!(error.category(), Category::Syntax);
}

#[test]
fn from_slice_reads_bytes_and_skips_a_byte_order_mark() -> TestResult {
    let member: Member = jsv::from_slice(b"\xEF\xBB\xBF{id:1}")?;
    assert_eq!(member.id, "1");
    Ok(())
}

// ----- depth limit ----------------------------------------------------------

#[test]
fn reading_refuses_nesting_beyond_the_limit() -> TestResult {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let at_limit: serde_json::Value = jsv::from_str(&nested(jsv::MAX_DEPTH))?;
    assert!(at_limit.is_array());

    let error = read_error::<serde_json::Value>(&nested(jsv::MAX_DEPTH + 1));
    assert_eq!(error.category(), Category::Limit);
    assert!(error.to_string().contains("deeper than 128"), "{error}");
    assert_eq!(error.offset(), Some(jsv::MAX_DEPTH));

    // Deep input is refused, not overflowing the stack, even when skipped.
    let hostile = format!("{{id:1,skip:{}}}", "{a:".repeat(100_000));
    let error = read_error::<Member>(&hostile);
    assert_eq!(error.category(), Category::Limit);
    let hostile = "[".repeat(1_000_000);
    assert!(jsv::from_str::<serde_json::Value>(&hostile).is_err());
    Ok(())
}

#[test]
fn writing_refuses_nesting_beyond_the_limit() -> TestResult {
    let mut value = serde_json::json!([]);
    for _ in 1..jsv::MAX_DEPTH {
        value = serde_json::Value::Array(vec![value]);
    }
    jsv::to_string(&value)?;
    let value = serde_json::Value::Array(vec![value]);
    let error = jsv::to_string(&value).expect_err("too deep");
    assert_eq!(error.category(), Category::Limit);
    Ok(())
}

// ----- serializer errors carry a path -----------------------------------------

#[test]
fn writing_errors_name_the_path() {
    #[derive(Serialize)]
    struct Reading {
        samples: Vec<f64>,
    }
    let error = jsv::to_string(&Reading {
        samples: vec![1.0, f64::NAN],
    })
    .expect_err("NaN");
    assert_eq!(
        error.to_string(),
        "cannot write the non-finite float NaN as JSV (at samples[1])"
    );
}

// ----- deserialize_any ------------------------------------------------------

#[test]
fn deserialize_any_reads_maps_lists_strings_and_null() -> TestResult {
    let value: serde_json::Value = jsv::from_str(r#"{a:1,b:[True,"x,y",,{}],c:,"d:e":{f:" g "}}"#)?;
    assert_eq!(
        value,
        serde_json::json!({
            "a": "1",
            "b": ["True", "x,y", null, {}],
            "c": null,
            "d:e": {"f": " g "}
        })
    );
    assert_eq!(
        jsv::to_string(&value)?,
        r#"{a:1,b:[True,"x,y",,{}],c:,"d:e":{f:" g "}}"#
    );
    Ok(())
}

#[test]
fn untagged_enums_see_scalars_as_strings() -> TestResult {
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Loose {
        List(Vec<String>),
        Text(String),
    }
    assert_eq!(
        jsv::from_str::<Loose>("[a,b]")?,
        Loose::List(vec!["a".into(), "b".into()])
    );
    assert_eq!(jsv::from_str::<Loose>("42")?, Loose::Text("42".into()));
    Ok(())
}

#[test]
fn borrowed_strings_are_zero_copy_when_unescaped() -> TestResult {
    #[derive(Deserialize)]
    struct Borrowing<'a> {
        name: &'a str,
    }
    let text = String::from("{name: plain text }");
    let read: Borrowing<'_> = jsv::from_str(&text)?;
    assert_eq!(read.name, "plain text");
    Ok(())
}

// ----- writers ----------------------------------------------------------------

#[test]
fn to_writer_writes_the_compact_text() -> TestResult {
    let mut out = Vec::new();
    jsv::to_writer(&mut out, &vec!["a", "b,c"])?;
    assert_eq!(out, br#"[a,"b,c"]"#);
    Ok(())
}

#[test]
fn to_writer_reports_io_errors() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let error = jsv::to_writer(Broken, &1).expect_err("broken writer");
    assert_eq!(error.category(), Category::Io);
    assert!(error.to_string().contains("disk full"));
    assert!(std::error::Error::source(&error).is_some());
}
