"""gRPC face of sm: thin handlers around the service's own logic."""

from __future__ import annotations

import grpc

from cgrates.v1 import sm_pb2, sm_pb2_grpc
from cgrpy.runtime.server import BaseService


class SessionServiceServicer(sm_pb2_grpc.SessionServiceServicer):
    """RPCs not implemented yet answer UNIMPLEMENTED (the generated default)."""

    def __init__(self, owner: SmServer) -> None:
        self.owner = owner


class SmServer(BaseService):
    name = "sm"

    def register(self, server: grpc.aio.Server) -> list[str]:
        sm_pb2_grpc.add_SessionServiceServicer_to_server(SessionServiceServicer(self), server)
        return [sm_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name]
