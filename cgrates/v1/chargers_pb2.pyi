from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChargersProcessEventRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ...) -> None: ...

class ChargerRun(_message.Message):
    __slots__ = ("charger_profile", "run_id", "attribute_profiles", "altered_fields", "event")
    CHARGER_PROFILE_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_PROFILES_FIELD_NUMBER: _ClassVar[int]
    ALTERED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    charger_profile: str
    run_id: str
    attribute_profiles: _containers.RepeatedScalarFieldContainer[str]
    altered_fields: _containers.RepeatedScalarFieldContainer[str]
    event: _common_pb2.Event
    def __init__(self, charger_profile: _Optional[str] = ..., run_id: _Optional[str] = ..., attribute_profiles: _Optional[_Iterable[str]] = ..., altered_fields: _Optional[_Iterable[str]] = ..., event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ...) -> None: ...

class ChargersProcessEventResponse(_message.Message):
    __slots__ = ("runs", "profile_version", "input_fields", "reusable")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELDS_FIELD_NUMBER: _ClassVar[int]
    REUSABLE_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[ChargerRun]
    profile_version: str
    input_fields: _containers.RepeatedScalarFieldContainer[str]
    reusable: bool
    def __init__(self, runs: _Optional[_Iterable[_Union[ChargerRun, _Mapping]]] = ..., profile_version: _Optional[str] = ..., input_fields: _Optional[_Iterable[str]] = ..., reusable: _Optional[bool] = ...) -> None: ...
