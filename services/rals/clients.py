"""RALs's outbound gRPC clients (through ``protos/`` only): cdre stores the ``*cdrlog`` CDRs,
SM serves cgrpy's own JSON-RPC API to ``*cgr_rpc`` actions with Address ``*internal``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cgrates.v1 import cdre_pb2, cdre_pb2_grpc, sm_pb2, sm_pb2_grpc
from cgrpy.config import Settings
from cgrpy.event import dumps_exact, loads_exact
from cgrpy.runtime.client import ServiceClient

CDRLOG_TIMEOUT_S = 30.0


class RalsClients:
    def __init__(self, settings: Settings) -> None:
        self.cdre = ServiceClient(settings, "cdre", cdre_pb2_grpc.CdrServiceStub)
        self.sm = ServiceClient(settings, "sm", sm_pb2_grpc.SessionServiceStub)

    async def process_cdrs(self, requests: Sequence[cdre_pb2.ProcessCDRRequest]) -> list[str | None]:
        """cdre's ProcessCDRs; per CDR None (stored, or already stored: a duplicate) or the
        error it answered. Safe to repeat: cdre is idempotent on (CGRID, RunID)."""
        reply = await self.cdre.call("ProcessCDRs", cdre_pb2.ProcessCDRsRequest(cdrs=list(requests)),
                                     idempotent=True, timeout=CDRLOG_TIMEOUT_S)
        return [None if not r.code else (r.message or f"gRPC code {r.code}") for r in reply.results]

    async def call_api(self, method: str, params: Any, timeout_s: float) -> Any:
        """One method of cgrpy's JSON-RPC API, run by SM (``SessionService.CallApi``)."""
        reply = await self.sm.call("CallApi", sm_pb2.ApiCallRequest(
            method=method, params_json=dumps_exact(params)), timeout=timeout_s)
        return loads_exact(reply.result_json) if reply.result_json else None

    async def close(self) -> None:
        await self.cdre.close()
        await self.sm.close()
