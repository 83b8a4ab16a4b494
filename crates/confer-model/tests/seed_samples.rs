//! Every sample of the seed documents (`spec/samples/`) parses into its generated type with
//! nothing lost, survives the trip through protobuf unchanged, and is pinned by a snapshot of
//! exactly what Confer writes for it.

use std::path::{Path, PathBuf};

use confer_model::{
    evo, gws_chat, gws_common, gws_voice, proto, proto_support::ProtoError, registry,
};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize)]
struct Manifest {
    sample: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    file: String,
    #[serde(rename = "type")]
    type_name: String,
    seed: String,
}

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/samples")
}

fn json_samples() -> Vec<(Sample, Value)> {
    let manifest = std::fs::read_to_string(samples_dir().join("samples.toml")).unwrap();
    let manifest: Manifest = toml::from_str(&manifest).unwrap();
    manifest
        .sample
        .into_iter()
        .map(|sample| {
            let text = std::fs::read_to_string(samples_dir().join(&sample.file))
                .unwrap_or_else(|e| panic!("{}: {e}", sample.file));
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", sample.file));
            (sample, value)
        })
        .collect()
}

#[test]
fn every_seed_sample_round_trips_through_json_and_protobuf_and_is_pinned() {
    let samples = json_samples();
    assert_eq!(samples.len(), 13, "the manifest lists every seed sample");
    for (sample, original) in &samples {
        let trip = registry::round_trip(&sample.type_name, original)
            .unwrap_or_else(|e| panic!("{} as {}: {e:?}", sample.file, sample.type_name));
        assert_eq!(
            &trip.via_json, original,
            "{}: JSON → model → JSON lost something",
            sample.file
        );
        assert_eq!(
            &trip.via_proto, original,
            "{}: the protobuf trip changed it",
            sample.file
        );
        assert!(
            trip.model_unchanged_by_proto,
            "{}: model → protobuf → model differs",
            sample.file
        );
        // What Confer writes, byte for byte (field order is the spec's).
        let written = serde_json::to_string_pretty(&trip.via_json).unwrap();
        let name = sample.file.trim_end_matches(".json").replace('/', "__");
        insta::with_settings!({ description => format!("seed {}: {} as {}", sample.seed, sample.file, sample.type_name), omit_expression => true }, {
            insta::assert_snapshot!(name, written);
        });
    }
}

#[test]
fn every_spec_struct_has_a_seed_sample_or_is_a_part_of_one() {
    // Types covered only as parts of a sample (a call inside a notification...).
    let parts = [
        "CallParticipant",
        "Call",
        "CallStateChangeMessage",
        "ChatParticipant",
        "Chat",
        "ChatLogEntry",
        "CustomerBreadcrumb",
        "SessionLogInfo",
        "SessionMemberInfo",
    ];
    // Types the seeds never print: the ServiceStack envelope and the requests around the seed's
    // operation. Their shapes are tested by the Evo dialect's end-to-end tests.
    let beyond_the_seeds = [
        "User",
        "Device",
        "ResponseError",
        "ResponseStatus",
        "ErrorResponse",
        "SessionList",
        "Authenticate",
        "AuthenticateResponse",
        "OriginalSessionMember",
        "NewSession",
        "InviteChatMember",
        "PhoneDestination",
        "SingleStepConferenceRequest",
        "CallOperationRequest",
        "DialRequest",
        "SupervisorMonitoringRequest",
        "ChatTargetRequest",
        "ChatAcceptRequest",
        "ChatMessageRequest",
    ];
    let sampled: Vec<String> = json_samples()
        .into_iter()
        .map(|(s, _)| s.type_name)
        .collect();
    for name in registry::STRUCT_NAMES {
        assert!(
            sampled.iter().any(|s| s == name)
                || parts.contains(name)
                || beyond_the_seeds.contains(name),
            "spec struct {name} is neither sampled, part of a sample, nor listed as beyond the seeds"
        );
    }
}

/// Unknown fields on input are accepted and dropped: clients send parameters this version does
/// not know (GWS's `location`, `userData`...), and the output carries only the spec's fields.
#[test]
fn unknown_input_fields_are_accepted_and_dropped() {
    for (sample, original) in json_samples() {
        let mut with_extra = original.clone();
        with_extra
            .as_object_mut()
            .unwrap()
            .insert("someFutureField".into(), json!({"nested": [1, 2]}));
        let trip = registry::round_trip(&sample.type_name, &with_extra).unwrap();
        assert_eq!(
            trip.via_json, original,
            "{}: the unknown field must be dropped",
            sample.file
        );
    }
}

#[test]
fn open_enums_keep_unlisted_values_and_closed_enums_refuse_them() {
    // Open (keep): a call state no document lists passes through unchanged.
    let state: gws_voice::CallState = serde_json::from_value(json!("Parked")).unwrap();
    assert_eq!(state, gws_voice::CallState::Other("Parked".into()));
    assert_eq!(serde_json::to_value(&state).unwrap(), json!("Parked"));
    let listed: gws_voice::CallState = serde_json::from_value(json!("Established")).unwrap();
    assert_eq!(listed, gws_voice::CallState::Established);
    let code: gws_common::StatusCode = serde_json::from_value(json!(42)).unwrap();
    assert_eq!(code, gws_common::StatusCode::Other(42));
    assert_eq!(
        serde_json::to_value(gws_common::StatusCode::NotAuthenticated).unwrap(),
        json!(20)
    );

    // Closed (reject): the error names the value and what was expected.
    let err = serde_json::from_value::<gws_chat::TreatAs>(json!("Loud"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Loud") && err.contains("Normal") && err.contains("System"),
        "{err}"
    );
    let err = serde_json::from_value::<gws_chat::ChatRemoveParticipantRequest>(json!({
        "operationName": "RemoveParticipantFromConference",
        "targetPath": "/users/x",
        "text": "bye",
        "treatAs": "Loud"
    }))
    .unwrap_err()
    .to_string();
    assert!(err.contains("Loud"), "{err}");
    assert!(serde_json::from_value::<evo::SessionMemberRoles>(json!("Boss")).is_err());
}

/// ServiceStack matches property names case-insensitively; the seed writes `MemberToRemove`.
#[test]
fn evo_types_accept_pascal_case_names() {
    let request: evo::DeleteChatMember =
        serde_json::from_value(json!({"SessionId": "s1", "MemberToRemove": "+15550101"})).unwrap();
    assert_eq!(request.session_id.as_deref(), Some("s1"));
    assert_eq!(request.member_to_remove.as_deref(), Some("+15550101"));
    // Declared aliases, and their PascalCase forms, are read too (never written).
    for body in [
        json!({"id": "s2"}),
        json!({"sessionId": "s2"}),
        json!({"SessionId": "s2"}),
        json!({"Id": "s2"}),
    ] {
        let new: evo::NewSession = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(new.id.as_deref(), Some("s2"), "{body}");
        assert_eq!(serde_json::to_value(&new).unwrap()["id"], "s2");
    }
    // Written back camelCase, as the seed's JSON is.
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({"sessionId": "s1", "memberToRemove": "+15550101"})
    );
}

/// .NET value types are always present: an Evo client that omits them gets the defaults, and an
/// empty SessionInfo is written with every enum, bool and list.
#[test]
fn evo_value_types_default_when_absent() {
    let info: evo::SessionInfo = serde_json::from_value(json!({"id": "s1"})).unwrap();
    assert_eq!(info.dial_state, evo::SessionDialState::None);
    assert_eq!(info.call_state, evo::SessionCallState::Disconnected);
    assert!(!info.ended);
    let written = serde_json::to_value(&info).unwrap();
    for key in [
        "dialState",
        "callState",
        "queueState",
        "channel",
        "ended",
        "holdReason",
        "log",
        "members",
        "direction",
        "wasMissed",
        "customerBreadcrumb",
    ] {
        assert!(written.get(key).is_some(), "{key} must always be written");
    }
    assert!(
        written.get("accountId").is_none(),
        "absent strings are left out, as ServiceStack does"
    );
}

#[test]
fn protobuf_messages_that_have_no_model_value_are_errors_naming_the_field() {
    // A required message field missing, deep inside.
    let notification = proto::CallNotification {
        data: None,
        channel: "/v2/me/calls".into(),
    };
    let err = gws_voice::CallNotification::try_from(notification).unwrap_err();
    assert_eq!(
        err,
        ProtoError {
            path: "data".into(),
            problem: "required field is missing".into()
        }
    );

    // An enum left unspecified, and an enum number nobody knows, inside a list.
    let mut chat = proto::Chat {
        state: "Chatting".into(),
        participants: vec![
            proto::ChatParticipant {
                nickname: "a".into(),
                r#type: "Agent".into(),
                visibility: proto::Visibility::All as i32,
                participant_id: "p1".into(),
                uri: None,
            };
            2
        ],
        ..Default::default()
    };
    chat.participants[1].visibility = proto::Visibility::Unspecified as i32;
    let err = gws_chat::Chat::try_from(chat.clone()).unwrap_err();
    assert_eq!(err.path, "participants[1].visibility");
    assert!(err.problem.contains("unspecified"), "{err}");
    chat.participants[1].visibility = 99;
    let err = gws_chat::Chat::try_from(chat).unwrap_err();
    assert_eq!(
        err.to_string(),
        "participants[1].visibility: 99 is not a value of Visibility"
    );
}

/// Seed 004 prints the reply in JSV; it is the same SessionInfo as the JSON transcription, and
/// Confer's own JSV for it reads back to the same value.
#[test]
fn the_evo_jsv_sample_is_the_same_session_info() {
    let jsv_text =
        std::fs::read_to_string(samples_dir().join("evo/delete_chat_member_response.jsv")).unwrap();
    let from_jsv: evo::SessionInfo = jsv::from_str(&jsv_text).unwrap();
    let json_text =
        std::fs::read_to_string(samples_dir().join("evo/delete_chat_member_response.json"))
            .unwrap();
    let from_json: evo::SessionInfo = serde_json::from_str(&json_text).unwrap();
    assert_eq!(from_jsv, from_json);
    let written = jsv::to_string(&from_json).unwrap();
    assert!(
        written.starts_with(
            "{dialState:None,callState:Disconnected,queueState:None,accountId:String,"
        ),
        "{written}"
    );
    assert!(written.contains(",ended:False,"), "{written}");
    assert_eq!(
        jsv::from_str::<evo::SessionInfo>(&written).unwrap(),
        from_json
    );
}
