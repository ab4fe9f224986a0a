"""gRPC face of rals: thin handlers around the service's own logic."""

from __future__ import annotations

import grpc

from cgrates.v1 import rals_pb2, rals_pb2_grpc
from cgrpy.runtime.server import BaseService


class RalsServiceServicer(rals_pb2_grpc.RalsServiceServicer):
    """RPCs not implemented yet answer UNIMPLEMENTED (the generated default)."""

    def __init__(self, owner: RalsServer) -> None:
        self.owner = owner


class RalsServer(BaseService):
    name = "rals"

    def register(self, server: grpc.aio.Server) -> list[str]:
        rals_pb2_grpc.add_RalsServiceServicer_to_server(RalsServiceServicer(self), server)
        return [rals_pb2.DESCRIPTOR.services_by_name["RalsService"].full_name]
