"""How a CGRateS error word crosses gRPC: the status code a :class:`CGRError` is sent with."""

from __future__ import annotations

import grpc

from cgrpy.errors import CGRError

# CGRateS error word -> gRPC status code.
ERROR_CODES: dict[str, grpc.StatusCode] = {
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "RATING_PLAN_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "ACCOUNT_NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "UNAUTHORIZED_DESTINATION": grpc.StatusCode.FAILED_PRECONDITION,
    "INSUFFICIENT_CREDIT": grpc.StatusCode.FAILED_PRECONDITION,
    "ACCOUNT_DISABLED": grpc.StatusCode.FAILED_PRECONDITION,
    "MAX_USAGE_EXCEEDED": grpc.StatusCode.OUT_OF_RANGE,
    "MANDATORY_IE_MISSING": grpc.StatusCode.INVALID_ARGUMENT,
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "EXISTS": grpc.StatusCode.ALREADY_EXISTS,
    "SERVER_ERROR": grpc.StatusCode.INTERNAL,
    "NOT_IMPLEMENTED": grpc.StatusCode.UNIMPLEMENTED,
    "PARTIALLY_EXECUTED": grpc.StatusCode.ABORTED,
    "UNSUPPORTED": grpc.StatusCode.UNIMPLEMENTED,
    # ResourceS: no matched resource has room (authorize / allocate).
    "RESOURCE_UNAUTHORIZED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RESOURCE_UNAVAILABLE": grpc.StatusCode.RESOURCE_EXHAUSTED,
    # the service is starting (not loaded yet): temporary, clients retry
    "NOT_READY": grpc.StatusCode.UNAVAILABLE,
}


def status_code(exc: CGRError) -> grpc.StatusCode:
    """The status ``exc`` is sent with; an error class may name its own (``grpc_code``)."""
    own = getattr(exc, "grpc_code", None)
    if own is not None:
        return own
    return ERROR_CODES.get(exc.word, grpc.StatusCode.UNKNOWN)
