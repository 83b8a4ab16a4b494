//! Evo Voice's shapes: what Confer writes for, and reads from, its clients.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
enum DialState {
    None,
    Dialing,
    Answered,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
enum CallState {
    Ringing,
    Connected,
    Disconnected,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(rename_all = "camelCase")]
struct BreadcrumbItem {
    id: String,
    name: String,
}

/// A handful of representative fields of Evo's `SessionInfo`, in the order
/// its metadata page lists them.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(rename_all = "camelCase")]
struct SessionInfo {
    dial_state: DialState,
    call_state: Option<CallState>,
    account_id: Option<String>,
    customer_breadcrumb: Vec<BreadcrumbItem>,
    ended: bool,
    application_data: BTreeMap<String, String>,
}

fn sample_session() -> SessionInfo {
    SessionInfo {
        dial_state: DialState::None,
        call_state: None,
        account_id: None,
        ended: false,
        customer_breadcrumb: vec![BreadcrumbItem {
            id: "a".into(),
            name: "b,c".into(),
        }],
        application_data: BTreeMap::from([("k".into(), "v".into())]),
    }
}

#[test]
fn session_info_serializes_to_the_expected_compact_jsv() -> TestResult {
    let text = jsv::to_string(&sample_session())?;
    assert_eq!(
        text,
        r#"{dialState:None,customerBreadcrumb:[{id:a,name:"b,c"}],ended:False,applicationData:{k:v}}"#
    );
    assert_eq!(jsv::from_str::<SessionInfo>(&text)?, sample_session());
    Ok(())
}

/// The request/response sample as Evo's metadata page prints it.
const METADATA_SAMPLE: &str = "{
dialState: None,
callState: Disconnected,
accountId: String,
customerBreadcrumb:
[
{
id: String,
name: String
}
],
ended: False,
applicationData:
{
String: String
}
}";

fn metadata_session() -> SessionInfo {
    SessionInfo {
        dial_state: DialState::None,
        call_state: Some(CallState::Disconnected),
        account_id: Some("String".into()),
        ended: false,
        customer_breadcrumb: vec![BreadcrumbItem {
            id: "String".into(),
            name: "String".into(),
        }],
        application_data: BTreeMap::from([("String".into(), "String".into())]),
    }
}

#[test]
fn the_metadata_page_sample_parses() -> TestResult {
    let session: SessionInfo = jsv::from_str(METADATA_SAMPLE)?;
    assert_eq!(session.account_id.as_deref(), Some("String"));
    assert_eq!(session, metadata_session());
    // The same with Windows line ends.
    let session: SessionInfo = jsv::from_str(&METADATA_SAMPLE.replace('\n', "\r\n"))?;
    assert_eq!(session, metadata_session());
    Ok(())
}

#[test]
fn keys_in_pascal_case_fill_camel_case_fields() -> TestResult {
    let text = "{DialState:Dialing,CallState:connected,AccountId:acc_1,Ended:True,\
                CustomerBreadcrumb:[{Id:1,Name:Main menu}],ApplicationData:{},SessionId:ignored}";
    let session: SessionInfo = jsv::from_str(text)?;
    assert_eq!(session.dial_state, DialState::Dialing);
    assert_eq!(session.call_state, Some(CallState::Connected));
    assert_eq!(session.account_id.as_deref(), Some("acc_1"));
    assert!(session.ended);
    assert_eq!(session.customer_breadcrumb[0].name, "Main menu");
    Ok(())
}

#[test]
fn pretty_output_is_the_metadata_layout_with_tabs() -> TestResult {
    let pretty = jsv::to_string_pretty(&metadata_session())?;
    // ServiceStack's JsvFormatter indents with tabs; the metadata page shows
    // the same text with them stripped.
    assert_eq!(
        pretty,
        "{\n\tdialState: None,\n\tcallState: Disconnected,\n\taccountId: String,\n\
         \tcustomerBreadcrumb:\n\t[\n\t\t{\n\t\t\tid: String,\n\t\t\tname: String\n\t\t}\n\t],\n\
         \tended: False,\n\tapplicationData:\n\t{\n\t\tString: String\n\t}\n}"
    );
    assert_eq!(pretty.replace('\t', ""), METADATA_SAMPLE);
    assert_eq!(jsv::from_str::<SessionInfo>(&pretty)?, metadata_session());
    Ok(())
}

#[test]
fn pretty_output_keeps_empty_containers_on_the_key_line() -> TestResult {
    let session = SessionInfo {
        customer_breadcrumb: vec![],
        application_data: BTreeMap::new(),
        ..sample_session()
    };
    let pretty = jsv::to_string_pretty(&session)?;
    assert_eq!(
        pretty,
        "{\n\tdialState: None,\n\tcustomerBreadcrumb: [],\n\tended: False,\n\tapplicationData: {}\n}"
    );
    assert_eq!(jsv::from_str::<SessionInfo>(&pretty)?, session);
    assert_eq!(jsv::to_string_pretty(&Vec::<i32>::new())?, "[]");
    assert_eq!(jsv::to_string_pretty(&vec![1, 2])?, "[\n\t1,\n\t2\n]");
    Ok(())
}
