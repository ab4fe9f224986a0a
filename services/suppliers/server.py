"""gRPC face of suppliers: thin handlers around the service's own logic."""

from __future__ import annotations

import grpc

from cgrates.v1 import suppliers_pb2, suppliers_pb2_grpc
from cgrpy.runtime.server import BaseService


class SuppliersServiceServicer(suppliers_pb2_grpc.SuppliersServiceServicer):
    """RPCs not implemented yet answer UNIMPLEMENTED (the generated default)."""

    def __init__(self, owner: SuppliersServer) -> None:
        self.owner = owner


class SuppliersServer(BaseService):
    name = "suppliers"

    def register(self, server: grpc.aio.Server) -> list[str]:
        suppliers_pb2_grpc.add_SuppliersServiceServicer_to_server(SuppliersServiceServicer(self), server)
        return [suppliers_pb2.DESCRIPTOR.services_by_name["SuppliersService"].full_name]
