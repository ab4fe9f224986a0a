"""gRPC face of chargers: thin handlers around the service's own logic."""

from __future__ import annotations

import grpc

from cgrates.v1 import chargers_pb2, chargers_pb2_grpc
from cgrpy.runtime.server import BaseService


class ChargersServiceServicer(chargers_pb2_grpc.ChargersServiceServicer):
    """RPCs not implemented yet answer UNIMPLEMENTED (the generated default)."""

    def __init__(self, owner: ChargersServer) -> None:
        self.owner = owner


class ChargersServer(BaseService):
    name = "chargers"

    def register(self, server: grpc.aio.Server) -> list[str]:
        chargers_pb2_grpc.add_ChargersServiceServicer_to_server(ChargersServiceServicer(self), server)
        return [chargers_pb2.DESCRIPTOR.services_by_name["ChargersService"].full_name]
