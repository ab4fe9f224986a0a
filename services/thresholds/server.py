"""gRPC face of thresholds: thin handlers around the service's own logic."""

from __future__ import annotations

import grpc

from cgrates.v1 import thresholds_pb2, thresholds_pb2_grpc
from cgrpy.runtime.server import BaseService


class ThresholdsServiceServicer(thresholds_pb2_grpc.ThresholdsServiceServicer):
    """RPCs not implemented yet answer UNIMPLEMENTED (the generated default)."""

    def __init__(self, owner: ThresholdsServer) -> None:
        self.owner = owner


class ThresholdsServer(BaseService):
    name = "thresholds"

    def register(self, server: grpc.aio.Server) -> list[str]:
        thresholds_pb2_grpc.add_ThresholdsServiceServicer_to_server(ThresholdsServiceServicer(self), server)
        return [thresholds_pb2.DESCRIPTOR.services_by_name["ThresholdsService"].full_name]
