"""gRPC face of attributes: thin handlers around the service's own logic."""

from __future__ import annotations

import grpc

from cgrates.v1 import attributes_pb2, attributes_pb2_grpc
from cgrpy.runtime.server import BaseService


class AttributesServiceServicer(attributes_pb2_grpc.AttributesServiceServicer):
    """RPCs not implemented yet answer UNIMPLEMENTED (the generated default)."""

    def __init__(self, owner: AttributesServer) -> None:
        self.owner = owner


class AttributesServer(BaseService):
    name = "attributes"

    def register(self, server: grpc.aio.Server) -> list[str]:
        attributes_pb2_grpc.add_AttributesServiceServicer_to_server(AttributesServiceServicer(self), server)
        return [attributes_pb2.DESCRIPTOR.services_by_name["AttributesService"].full_name]
