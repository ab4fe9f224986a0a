from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttributesProcessEventRequest(_message.Message):
    __slots__ = ("event", "context", "attribute_ids", "process_runs")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_IDS_FIELD_NUMBER: _ClassVar[int]
    PROCESS_RUNS_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    context: str
    attribute_ids: _containers.RepeatedScalarFieldContainer[str]
    process_runs: int
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., context: _Optional[str] = ..., attribute_ids: _Optional[_Iterable[str]] = ..., process_runs: _Optional[int] = ...) -> None: ...

class AttributesProcessEventResponse(_message.Message):
    __slots__ = ("matched_profiles", "altered_fields", "event", "profile_version", "input_fields", "reusable")
    MATCHED_PROFILES_FIELD_NUMBER: _ClassVar[int]
    ALTERED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PROFILE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    REUSABLE_FIELD_NUMBER: _ClassVar[int]
    matched_profiles: _containers.RepeatedScalarFieldContainer[str]
    altered_fields: _containers.RepeatedScalarFieldContainer[str]
    event: _common_pb2.Event
    profile_version: str
    input_fields: _containers.RepeatedScalarFieldContainer[str]
    reusable: bool
    def __init__(self, matched_profiles: _Optional[_Iterable[str]] = ..., altered_fields: _Optional[_Iterable[str]] = ..., event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., profile_version: _Optional[str] = ..., input_fields: _Optional[_Iterable[str]] = ..., reusable: _Optional[bool] = ...) -> None: ...
