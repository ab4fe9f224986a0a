from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProfileRequest(_message.Message):
    __slots__ = ("kind", "tpid", "object", "no_overwrite", "append")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TPID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    NO_OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    APPEND_FIELD_NUMBER: _ClassVar[int]
    kind: str
    tpid: str
    object: _common_pb2.JsonObject
    no_overwrite: bool
    append: bool
    def __init__(self, kind: _Optional[str] = ..., tpid: _Optional[str] = ..., object: _Optional[_Union[_common_pb2.JsonObject, _Mapping]] = ..., no_overwrite: _Optional[bool] = ..., append: _Optional[bool] = ...) -> None: ...

class SetProfileResponse(_message.Message):
    __slots__ = ("tenant", "id", "rows", "reloaded")
    class RowsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ReloadedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    id: str
    rows: _containers.ScalarMap[str, int]
    reloaded: _containers.ScalarMap[str, str]
    def __init__(self, tenant: _Optional[str] = ..., id: _Optional[str] = ..., rows: _Optional[_Mapping[str, int]] = ..., reloaded: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ProfileIDsRequest(_message.Message):
    __slots__ = ("kind", "tpid", "tenant")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TPID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    tpid: str
    tenant: str
    def __init__(self, kind: _Optional[str] = ..., tpid: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class TPIdsResponse(_message.Message):
    __slots__ = ("tpids",)
    TPIDS_FIELD_NUMBER: _ClassVar[int]
    tpids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tpids: _Optional[_Iterable[str]] = ...) -> None: ...

class TPRowsRequest(_message.Message):
    __slots__ = ("tpid", "file", "id")
    TPID_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    tpid: str
    file: str
    id: str
    def __init__(self, tpid: _Optional[str] = ..., file: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class TPRowsResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[_common_pb2.JsonObject]
    def __init__(self, rows: _Optional[_Iterable[_Union[_common_pb2.JsonObject, _Mapping]]] = ...) -> None: ...

class LoadTariffPlanRequest(_message.Message):
    __slots__ = ("tpid", "flush", "dry_run", "kind", "id")
    TPID_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    tpid: str
    flush: bool
    dry_run: bool
    kind: str
    id: str
    def __init__(self, tpid: _Optional[str] = ..., flush: _Optional[bool] = ..., dry_run: _Optional[bool] = ..., kind: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class LoadTariffPlanResponse(_message.Message):
    __slots__ = ("rows", "reloaded")
    class RowsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ReloadedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROWS_FIELD_NUMBER: _ClassVar[int]
    RELOADED_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.ScalarMap[str, int]
    reloaded: _containers.ScalarMap[str, str]
    def __init__(self, rows: _Optional[_Mapping[str, int]] = ..., reloaded: _Optional[_Mapping[str, str]] = ...) -> None: ...
