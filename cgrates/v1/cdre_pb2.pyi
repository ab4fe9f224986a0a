from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProcessCDRRequest(_message.Message):
    __slots__ = ("event", "flags", "session_cost")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    SESSION_COST_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    flags: _containers.RepeatedScalarFieldContainer[str]
    session_cost: SessionCost
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., flags: _Optional[_Iterable[str]] = ..., session_cost: _Optional[_Union[SessionCost, _Mapping]] = ...) -> None: ...

class ProcessCDRsRequest(_message.Message):
    __slots__ = ("cdrs",)
    CDRS_FIELD_NUMBER: _ClassVar[int]
    cdrs: _containers.RepeatedCompositeFieldContainer[ProcessCDRRequest]
    def __init__(self, cdrs: _Optional[_Iterable[_Union[ProcessCDRRequest, _Mapping]]] = ...) -> None: ...

class ProcessCDRResult(_message.Message):
    __slots__ = ("response", "code", "message")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    response: ProcessCDRResponse
    code: int
    message: str
    def __init__(self, response: _Optional[_Union[ProcessCDRResponse, _Mapping]] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ProcessCDRsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ProcessCDRResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ProcessCDRResult, _Mapping]]] = ...) -> None: ...

class CDR(_message.Message):
    __slots__ = ("cgrid", "run_id", "origin_host", "source", "origin_id", "tor", "request_type", "tenant", "category", "account", "subject", "destination", "setup_time_unix_ns", "answer_time_unix_ns", "usage_ns", "extra_fields", "cost", "cost_source", "cost_details_json", "extra_info", "order_id", "pre_rated", "partial")
    class ExtraFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CGRID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_HOST_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_ID_FIELD_NUMBER: _ClassVar[int]
    TOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    SETUP_TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELDS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_SOURCE_FIELD_NUMBER: _ClassVar[int]
    COST_DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    EXTRA_INFO_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PRE_RATED_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    cgrid: str
    run_id: str
    origin_host: str
    source: str
    origin_id: str
    tor: str
    request_type: str
    tenant: str
    category: str
    account: str
    subject: str
    destination: str
    setup_time_unix_ns: int
    answer_time_unix_ns: int
    usage_ns: int
    extra_fields: _containers.ScalarMap[str, str]
    cost: str
    cost_source: str
    cost_details_json: str
    extra_info: str
    order_id: int
    pre_rated: bool
    partial: bool
    def __init__(self, cgrid: _Optional[str] = ..., run_id: _Optional[str] = ..., origin_host: _Optional[str] = ..., source: _Optional[str] = ..., origin_id: _Optional[str] = ..., tor: _Optional[str] = ..., request_type: _Optional[str] = ..., tenant: _Optional[str] = ..., category: _Optional[str] = ..., account: _Optional[str] = ..., subject: _Optional[str] = ..., destination: _Optional[str] = ..., setup_time_unix_ns: _Optional[int] = ..., answer_time_unix_ns: _Optional[int] = ..., usage_ns: _Optional[int] = ..., extra_fields: _Optional[_Mapping[str, str]] = ..., cost: _Optional[str] = ..., cost_source: _Optional[str] = ..., cost_details_json: _Optional[str] = ..., extra_info: _Optional[str] = ..., order_id: _Optional[int] = ..., pre_rated: _Optional[bool] = ..., partial: _Optional[bool] = ...) -> None: ...

class ProcessCDRResponse(_message.Message):
    __slots__ = ("cdrs", "duplicate")
    CDRS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    cdrs: _containers.RepeatedCompositeFieldContainer[CDR]
    duplicate: bool
    def __init__(self, cdrs: _Optional[_Iterable[_Union[CDR, _Mapping]]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class SessionCost(_message.Message):
    __slots__ = ("cgrid", "run_id", "origin_host", "origin_id", "cost_source", "usage_ns", "cost", "cost_details_json")
    CGRID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_HOST_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_ID_FIELD_NUMBER: _ClassVar[int]
    COST_SOURCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    cgrid: str
    run_id: str
    origin_host: str
    origin_id: str
    cost_source: str
    usage_ns: int
    cost: str
    cost_details_json: str
    def __init__(self, cgrid: _Optional[str] = ..., run_id: _Optional[str] = ..., origin_host: _Optional[str] = ..., origin_id: _Optional[str] = ..., cost_source: _Optional[str] = ..., usage_ns: _Optional[int] = ..., cost: _Optional[str] = ..., cost_details_json: _Optional[str] = ...) -> None: ...

class CDRFilter(_message.Message):
    __slots__ = ("cgrids", "run_ids", "origin_ids", "request_types", "tenants", "accounts", "subjects", "destination_prefixes", "setup_time_start_unix_ns", "setup_time_end_unix_ns", "answer_time_start_unix_ns", "answer_time_end_unix_ns", "min_cost", "max_cost", "order_by", "limit", "offset")
    CGRIDS_FIELD_NUMBER: _ClassVar[int]
    RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_IDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPES_FIELD_NUMBER: _ClassVar[int]
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    SETUP_TIME_START_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    SETUP_TIME_END_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_START_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_END_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    MIN_COST_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    cgrids: _containers.RepeatedScalarFieldContainer[str]
    run_ids: _containers.RepeatedScalarFieldContainer[str]
    origin_ids: _containers.RepeatedScalarFieldContainer[str]
    request_types: _containers.RepeatedScalarFieldContainer[str]
    tenants: _containers.RepeatedScalarFieldContainer[str]
    accounts: _containers.RepeatedScalarFieldContainer[str]
    subjects: _containers.RepeatedScalarFieldContainer[str]
    destination_prefixes: _containers.RepeatedScalarFieldContainer[str]
    setup_time_start_unix_ns: int
    setup_time_end_unix_ns: int
    answer_time_start_unix_ns: int
    answer_time_end_unix_ns: int
    min_cost: str
    max_cost: str
    order_by: str
    limit: int
    offset: int
    def __init__(self, cgrids: _Optional[_Iterable[str]] = ..., run_ids: _Optional[_Iterable[str]] = ..., origin_ids: _Optional[_Iterable[str]] = ..., request_types: _Optional[_Iterable[str]] = ..., tenants: _Optional[_Iterable[str]] = ..., accounts: _Optional[_Iterable[str]] = ..., subjects: _Optional[_Iterable[str]] = ..., destination_prefixes: _Optional[_Iterable[str]] = ..., setup_time_start_unix_ns: _Optional[int] = ..., setup_time_end_unix_ns: _Optional[int] = ..., answer_time_start_unix_ns: _Optional[int] = ..., answer_time_end_unix_ns: _Optional[int] = ..., min_cost: _Optional[str] = ..., max_cost: _Optional[str] = ..., order_by: _Optional[str] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class GetCDRsResponse(_message.Message):
    __slots__ = ("cdrs",)
    CDRS_FIELD_NUMBER: _ClassVar[int]
    cdrs: _containers.RepeatedCompositeFieldContainer[CDR]
    def __init__(self, cdrs: _Optional[_Iterable[_Union[CDR, _Mapping]]] = ...) -> None: ...

class CountCDRsResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class RateCDRsRequest(_message.Message):
    __slots__ = ("filter", "dry_run")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    filter: CDRFilter
    dry_run: bool
    def __init__(self, filter: _Optional[_Union[CDRFilter, _Mapping]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class RateCDRsResponse(_message.Message):
    __slots__ = ("rerated", "cost_difference", "cdrs")
    RERATED_FIELD_NUMBER: _ClassVar[int]
    COST_DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    CDRS_FIELD_NUMBER: _ClassVar[int]
    rerated: int
    cost_difference: str
    cdrs: _containers.RepeatedCompositeFieldContainer[CDR]
    def __init__(self, rerated: _Optional[int] = ..., cost_difference: _Optional[str] = ..., cdrs: _Optional[_Iterable[_Union[CDR, _Mapping]]] = ...) -> None: ...

class ExportCDRsRequest(_message.Message):
    __slots__ = ("filter", "export_profile", "export_path", "format", "export_id", "file_name", "include_exported", "field_separator")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    EXPORT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    EXPORT_PATH_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EXPORTED_FIELD_NUMBER: _ClassVar[int]
    FIELD_SEPARATOR_FIELD_NUMBER: _ClassVar[int]
    filter: CDRFilter
    export_profile: str
    export_path: str
    format: str
    export_id: str
    file_name: str
    include_exported: bool
    field_separator: str
    def __init__(self, filter: _Optional[_Union[CDRFilter, _Mapping]] = ..., export_profile: _Optional[str] = ..., export_path: _Optional[str] = ..., format: _Optional[str] = ..., export_id: _Optional[str] = ..., file_name: _Optional[str] = ..., include_exported: _Optional[bool] = ..., field_separator: _Optional[str] = ...) -> None: ...

class ExportCDRsResponse(_message.Message):
    __slots__ = ("file", "exported", "failed_cgrids", "export_id", "total_records", "total_cost", "first_order_id", "last_order_id", "failed")
    class FailedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FILE_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_FIELD_NUMBER: _ClassVar[int]
    FAILED_CGRIDS_FIELD_NUMBER: _ClassVar[int]
    EXPORT_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RECORDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COST_FIELD_NUMBER: _ClassVar[int]
    FIRST_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    file: str
    exported: int
    failed_cgrids: _containers.RepeatedScalarFieldContainer[str]
    export_id: str
    total_records: int
    total_cost: str
    first_order_id: int
    last_order_id: int
    failed: _containers.ScalarMap[str, str]
    def __init__(self, file: _Optional[str] = ..., exported: _Optional[int] = ..., failed_cgrids: _Optional[_Iterable[str]] = ..., export_id: _Optional[str] = ..., total_records: _Optional[int] = ..., total_cost: _Optional[str] = ..., first_order_id: _Optional[int] = ..., last_order_id: _Optional[int] = ..., failed: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FailedExportsRequest(_message.Message):
    __slots__ = ("exporter", "limit")
    EXPORTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    exporter: str
    limit: int
    def __init__(self, exporter: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class FailedExport(_message.Message):
    __slots__ = ("exporter", "cdr", "attempts", "last_error", "next_retry_unix_ns")
    EXPORTER_FIELD_NUMBER: _ClassVar[int]
    CDR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    NEXT_RETRY_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    exporter: str
    cdr: CDR
    attempts: int
    last_error: str
    next_retry_unix_ns: int
    def __init__(self, exporter: _Optional[str] = ..., cdr: _Optional[_Union[CDR, _Mapping]] = ..., attempts: _Optional[int] = ..., last_error: _Optional[str] = ..., next_retry_unix_ns: _Optional[int] = ...) -> None: ...

class FailedExportsResponse(_message.Message):
    __slots__ = ("exports",)
    EXPORTS_FIELD_NUMBER: _ClassVar[int]
    exports: _containers.RepeatedCompositeFieldContainer[FailedExport]
    def __init__(self, exports: _Optional[_Iterable[_Union[FailedExport, _Mapping]]] = ...) -> None: ...

class RetryFailedExportsResponse(_message.Message):
    __slots__ = ("retried",)
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    retried: int
    def __init__(self, retried: _Optional[int] = ...) -> None: ...
