"""gRPC face of cdre: thin handlers around the service's own logic."""

from __future__ import annotations

import grpc

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc
from cgrpy.runtime.server import BaseService


class CdrServiceServicer(cdre_pb2_grpc.CdrServiceServicer):
    """RPCs not implemented yet answer UNIMPLEMENTED (the generated default)."""

    def __init__(self, owner: CdreServer) -> None:
        self.owner = owner


class CdreServer(BaseService):
    name = "cdre"

    def register(self, server: grpc.aio.Server) -> list[str]:
        cdre_pb2_grpc.add_CdrServiceServicer_to_server(CdrServiceServicer(self), server)
        return [cdre_pb2.DESCRIPTOR.services_by_name["CdrService"].full_name]
