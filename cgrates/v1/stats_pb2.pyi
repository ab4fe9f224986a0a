from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatsProcessEventRequest(_message.Message):
    __slots__ = ("event", "stat_ids")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    STAT_IDS_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    stat_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., stat_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class StatsProcessEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[StatsProcessEventRequest]
    def __init__(self, events: _Optional[_Iterable[_Union[StatsProcessEventRequest, _Mapping]]] = ...) -> None: ...

class MetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.ScalarMap[str, str]
    def __init__(self, metrics: _Optional[_Mapping[str, str]] = ...) -> None: ...
