from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetSuppliersRequest(_message.Message):
    __slots__ = ("event", "max_cost", "ignore_errors", "limit", "offset")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_FIELD_NUMBER: _ClassVar[int]
    IGNORE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    max_cost: str
    ignore_errors: bool
    limit: int
    offset: int
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., max_cost: _Optional[str] = ..., ignore_errors: _Optional[bool] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class SortedSupplier(_message.Message):
    __slots__ = ("supplier_id", "supplier_parameters", "sorting_data")
    class SortingDataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUPPLIER_ID_FIELD_NUMBER: _ClassVar[int]
    SUPPLIER_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SORTING_DATA_FIELD_NUMBER: _ClassVar[int]
    supplier_id: str
    supplier_parameters: str
    sorting_data: _containers.ScalarMap[str, str]
    def __init__(self, supplier_id: _Optional[str] = ..., supplier_parameters: _Optional[str] = ..., sorting_data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetSuppliersResponse(_message.Message):
    __slots__ = ("profile_id", "sorting", "suppliers", "digest", "json")
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    SORTING_FIELD_NUMBER: _ClassVar[int]
    SUPPLIERS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    profile_id: str
    sorting: str
    suppliers: _containers.RepeatedCompositeFieldContainer[SortedSupplier]
    digest: str
    json: str
    def __init__(self, profile_id: _Optional[str] = ..., sorting: _Optional[str] = ..., suppliers: _Optional[_Iterable[_Union[SortedSupplier, _Mapping]]] = ..., digest: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...
