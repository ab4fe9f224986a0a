from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ThresholdsProcessEventRequest(_message.Message):
    __slots__ = ("event", "threshold_ids")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_IDS_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    threshold_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., threshold_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ThresholdsProcessEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ThresholdsProcessEventRequest]
    def __init__(self, events: _Optional[_Iterable[_Union[ThresholdsProcessEventRequest, _Mapping]]] = ...) -> None: ...
