//! What a tool with no `.proto` in hand finds on the gRPC port: the standard health service and
//! server reflection (v1 and v1alpha), describing every service and message with its comments.

mod grpc_support;

use grpc_support::*;
use prost::Message as _;
use tokio_stream::StreamExt as _;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

async fn reflect(server: &Server, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(server.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("ServerReflectionInfo")
        .into_inner();
    responses
        .next()
        .await
        .expect("a response")
        .expect("not an error")
        .message_response
        .expect("a message response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_every_service_serving_until_shutdown() {
    let server = Server::start().await;
    let mut health = HealthClient::new(server.channel.clone());
    for service in ["", "confer.v1.CallService", "confer.v1.NotificationService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("Check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let status = health
        .check(HealthCheckRequest {
            service: "confer.v1.NoSuchService".into(),
        })
        .await
        .expect_err("an unknown service");
    assert_eq!(status.code(), tonic::Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_and_describes_the_api() {
    let server = Server::start().await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(&server, MessageRequest::ListServices(String::new())).await
    else {
        panic!("not a service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "confer.v1.AuthService",
        "confer.v1.CallService",
        "confer.v1.ChatService",
        "confer.v1.SessionService",
        "confer.v1.NotificationService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == service), "{service} in {names:?}");
    }

    let MessageResponse::FileDescriptorResponse(files) = reflect(
        &server,
        MessageRequest::FileContainingSymbol("confer.v1.CallService".into()),
    )
    .await
    else {
        panic!("not a file descriptor");
    };
    let files: Vec<prost_types::FileDescriptorProto> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| {
            prost_types::FileDescriptorProto::decode(bytes.as_slice()).expect("a descriptor")
        })
        .collect();
    let services = files
        .iter()
        .find(|f| f.name() == "confer/v1/services.proto")
        .expect("services.proto");
    let call_service = services
        .service
        .iter()
        .find(|s| s.name() == "CallService")
        .expect("CallService");
    let methods: Vec<&str> = call_service.method.iter().map(|m| m.name()).collect();
    assert_eq!(
        methods,
        [
            "CreateCall",
            "GetCall",
            "ListCalls",
            "AddCallParticipant",
            "RemoveCallParticipant",
            "EndCall"
        ]
    );
    assert!(
        services
            .source_code_info
            .as_ref()
            .is_some_and(|info| info.location.iter().any(|l| l
                .leading_comments()
                .contains("RemoveParticipantFromConference"))),
        "comments travel with the descriptors"
    );
    // The generated model a response names is there too.
    let MessageResponse::FileDescriptorResponse(call_file) = reflect(
        &server,
        MessageRequest::FileContainingSymbol("confer.v1.Call".into()),
    )
    .await
    else {
        panic!("not a file descriptor");
    };
    let first =
        prost_types::FileDescriptorProto::decode(call_file.file_descriptor_proto[0].as_slice())
            .expect("a descriptor");
    assert_eq!(first.name(), "confer/v1/gws_voice.proto");
    server.stop().await;
}

/// Older tools (and Python's `grpcio-reflection`) speak v1alpha; it answers the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_answers_too() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = Server::start().await;
    let mut client = ServerReflectionClient::new(server.channel.clone());
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }]))
        .await
        .expect("ServerReflectionInfo")
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = responses
        .next()
        .await
        .expect("a response")
        .expect("not an error")
        .message_response
    else {
        panic!("not a service list");
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "confer.v1.CallService")
    );
    server.stop().await;
}
