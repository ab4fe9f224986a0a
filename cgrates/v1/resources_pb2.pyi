from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceUsageRequest(_message.Message):
    __slots__ = ("event", "usage_id", "units", "usage_ttl_ns")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    USAGE_ID_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    USAGE_TTL_NS_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    usage_id: str
    units: float
    usage_ttl_ns: int
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., usage_id: _Optional[str] = ..., units: _Optional[float] = ..., usage_ttl_ns: _Optional[int] = ...) -> None: ...

class ResourceAllocationResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class ReleaseUsageRequest(_message.Message):
    __slots__ = ("tenant", "usage_id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USAGE_ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    usage_id: str
    def __init__(self, tenant: _Optional[str] = ..., usage_id: _Optional[str] = ...) -> None: ...

class ReleaseUsageResponse(_message.Message):
    __slots__ = ("resource_ids",)
    RESOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    resource_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, resource_ids: _Optional[_Iterable[str]] = ...) -> None: ...
