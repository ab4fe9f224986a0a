"""gRPC face of stats: thin handlers around the service's own logic."""

from __future__ import annotations

import grpc

from cgrates.v1 import stats_pb2, stats_pb2_grpc
from cgrpy.runtime.server import BaseService


class StatsServiceServicer(stats_pb2_grpc.StatsServiceServicer):
    """RPCs not implemented yet answer UNIMPLEMENTED (the generated default)."""

    def __init__(self, owner: StatsServer) -> None:
        self.owner = owner


class StatsServer(BaseService):
    name = "stats"

    def register(self, server: grpc.aio.Server) -> list[str]:
        stats_pb2_grpc.add_StatsServiceServicer_to_server(StatsServiceServicer(self), server)
        return [stats_pb2.DESCRIPTOR.services_by_name["StatsService"].full_name]
