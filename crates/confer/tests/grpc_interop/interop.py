"""A gRPC client nobody on the project wrote (Python grpcio), given no .proto: it discovers
Confer's API by server reflection, removes a participant from the demo call, and receives the
notification on Subscribe. Prints one JSON object for the Rust test to check.

usage: interop.py HOST:PORT
"""

import base64
import json
import queue
import sys
import threading

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT = 30


def basic(username, password="demo"):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [("authorization", f"Basic {token}")]


def list_services_v1(channel):
    """Server reflection v1 (grpc.reflection.v1): its messages are v1alpha's, on another path."""
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    responses = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT)
    for response in responses:
        return sorted(s.name for s in response.list_services_response.service)
    return []


class Api:
    """Calls any method of any service, with message classes built from reflected descriptors."""

    def __init__(self, channel):
        self.channel = channel
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def method(self, service, name):
        descriptor = self.pool.FindServiceByName(service).methods_by_name[name]
        request = message_factory.GetMessageClass(descriptor.input_type)
        response = message_factory.GetMessageClass(descriptor.output_type)
        path = f"/{service}/{name}"
        kind = self.channel.unary_stream if descriptor.server_streaming else self.channel.unary_unary
        stub = kind(path, request_serializer=request.SerializeToString, response_deserializer=response.FromString)
        return request, stub


def main():
    channel = grpc.insecure_channel(sys.argv[1])
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    api = Api(channel)
    services = sorted(api.database.get_services())

    # agent15002, a party of the demo call, listens from the start of the log (so nothing can be
    # missed between subscribing and the removal).
    subscribe_request, subscribe = api.method("confer.v1.NotificationService", "Subscribe")
    stream = subscribe(subscribe_request(after_seq=0), metadata=basic("agent15002"), timeout=TIMEOUT)
    notifications = queue.Queue()

    def read():
        try:
            for notification in stream:
                notifications.put(notification)
        except grpc.RpcError as error:
            notifications.put(error)

    threading.Thread(target=read, daemon=True).start()

    # agent15000, the owner, removes 15001 (seed 000).
    remove_request, remove = api.method("confer.v1.CallService", "RemoveCallParticipant")
    result = remove(
        remove_request(call_id="01RCC3N118B1V0SL8O7GK2LAES00000O", participant="15001"),
        metadata=basic("agent15000"),
        timeout=TIMEOUT,
    )
    seq = result.commit.last_seq

    received = None
    while received is None:
        item = notifications.get(timeout=TIMEOUT)
        if isinstance(item, grpc.RpcError):
            raise item
        if item.seq == seq:
            received = item
    stream.cancel()

    # A refusal comes back as a status code the client knows.
    try:
        remove(
            remove_request(call_id="01RCC3N118B1V0SL8O7GK2LAES00000O", participant="15001"),
            metadata=basic("agent15000"),
            timeout=TIMEOUT,
        )
        refusal = None
    except grpc.RpcError as error:
        refusal = error.code().name

    print(
        json.dumps(
            {
                "services": services,
                "v1_services": list_services_v1(channel),
                "removed": json_format.MessageToDict(result),
                "notification_payload": received.WhichOneof("payload"),
                "notification": json_format.MessageToDict(received),
                "refusal": refusal,
            }
        )
    )


if __name__ == "__main__":
    main()
