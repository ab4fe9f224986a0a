from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Value(_message.Message):
    __slots__ = ("string_value", "int_value", "decimal_value", "bool_value", "json_value", "null_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DECIMAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    JSON_VALUE_FIELD_NUMBER: _ClassVar[int]
    NULL_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    int_value: int
    decimal_value: str
    bool_value: bool
    json_value: str
    null_value: bool
    def __init__(self, string_value: _Optional[str] = ..., int_value: _Optional[int] = ..., decimal_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., json_value: _Optional[str] = ..., null_value: _Optional[bool] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("tenant", "id", "time_unix_ns", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    id: str
    time_unix_ns: int
    fields: _containers.MessageMap[str, Value]
    def __init__(self, tenant: _Optional[str] = ..., id: _Optional[str] = ..., time_unix_ns: _Optional[int] = ..., fields: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class ReloadCacheRequest(_message.Message):
    __slots__ = ("tpid",)
    TPID_FIELD_NUMBER: _ClassVar[int]
    tpid: str
    def __init__(self, tpid: _Optional[str] = ...) -> None: ...

class ReloadCacheResponse(_message.Message):
    __slots__ = ("tpid", "loaded")
    class LoadedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TPID_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    tpid: str
    loaded: _containers.ScalarMap[str, int]
    def __init__(self, tpid: _Optional[str] = ..., loaded: _Optional[_Mapping[str, int]] = ...) -> None: ...

class TenantID(_message.Message):
    __slots__ = ("tenant", "id")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    id: str
    def __init__(self, tenant: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class TenantRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class IDsResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class JsonObject(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EventResult(_message.Message):
    __slots__ = ("event_id", "ids", "error", "duplicate")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    error: str
    duplicate: bool
    def __init__(self, event_id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class ProcessEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ...) -> None: ...

class PartitionOwnership(_message.Message):
    __slots__ = ("advertised", "partitions", "partitions_total", "mode")
    ADVERTISED_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    advertised: str
    partitions: _containers.RepeatedScalarFieldContainer[int]
    partitions_total: int
    mode: str
    def __init__(self, advertised: _Optional[str] = ..., partitions: _Optional[_Iterable[int]] = ..., partitions_total: _Optional[int] = ..., mode: _Optional[str] = ...) -> None: ...
