from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApiCallRequest(_message.Message):
    __slots__ = ("method", "params_json")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    method: str
    params_json: str
    def __init__(self, method: _Optional[str] = ..., params_json: _Optional[str] = ...) -> None: ...

class ApiCallReply(_message.Message):
    __slots__ = ("result_json",)
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    def __init__(self, result_json: _Optional[str] = ...) -> None: ...

class SessionFlags(_message.Message):
    __slots__ = ("get_max_usage", "get_attributes", "get_suppliers", "process_thresholds", "process_stat_queues", "init_session", "terminate_session", "release_resources", "suppliers_ignore_errors", "suppliers_max_cost")
    GET_MAX_USAGE_FIELD_NUMBER: _ClassVar[int]
    GET_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    GET_SUPPLIERS_FIELD_NUMBER: _ClassVar[int]
    PROCESS_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    PROCESS_STAT_QUEUES_FIELD_NUMBER: _ClassVar[int]
    INIT_SESSION_FIELD_NUMBER: _ClassVar[int]
    TERMINATE_SESSION_FIELD_NUMBER: _ClassVar[int]
    RELEASE_RESOURCES_FIELD_NUMBER: _ClassVar[int]
    SUPPLIERS_IGNORE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    SUPPLIERS_MAX_COST_FIELD_NUMBER: _ClassVar[int]
    get_max_usage: bool
    get_attributes: bool
    get_suppliers: bool
    process_thresholds: bool
    process_stat_queues: bool
    init_session: bool
    terminate_session: bool
    release_resources: bool
    suppliers_ignore_errors: bool
    suppliers_max_cost: str
    def __init__(self, get_max_usage: _Optional[bool] = ..., get_attributes: _Optional[bool] = ..., get_suppliers: _Optional[bool] = ..., process_thresholds: _Optional[bool] = ..., process_stat_queues: _Optional[bool] = ..., init_session: _Optional[bool] = ..., terminate_session: _Optional[bool] = ..., release_resources: _Optional[bool] = ..., suppliers_ignore_errors: _Optional[bool] = ..., suppliers_max_cost: _Optional[str] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("event", "flags")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.Event
    flags: SessionFlags
    def __init__(self, event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ..., flags: _Optional[_Union[SessionFlags, _Mapping]] = ...) -> None: ...

class SessionReply(_message.Message):
    __slots__ = ("max_usage_ns", "attribute_profiles", "altered_fields", "attributes_digest", "suppliers_digest", "threshold_ids", "stat_queue_ids", "event")
    MAX_USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_PROFILES_FIELD_NUMBER: _ClassVar[int]
    ALTERED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SUPPLIERS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_IDS_FIELD_NUMBER: _ClassVar[int]
    STAT_QUEUE_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    max_usage_ns: int
    attribute_profiles: _containers.RepeatedScalarFieldContainer[str]
    altered_fields: _containers.RepeatedScalarFieldContainer[str]
    attributes_digest: str
    suppliers_digest: str
    threshold_ids: _containers.RepeatedScalarFieldContainer[str]
    stat_queue_ids: _containers.RepeatedScalarFieldContainer[str]
    event: _common_pb2.Event
    def __init__(self, max_usage_ns: _Optional[int] = ..., attribute_profiles: _Optional[_Iterable[str]] = ..., altered_fields: _Optional[_Iterable[str]] = ..., attributes_digest: _Optional[str] = ..., suppliers_digest: _Optional[str] = ..., threshold_ids: _Optional[_Iterable[str]] = ..., stat_queue_ids: _Optional[_Iterable[str]] = ..., event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ...) -> None: ...

class ActiveSessionsRequest(_message.Message):
    __slots__ = ("tenant", "account", "origin_id", "cgrid")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_ID_FIELD_NUMBER: _ClassVar[int]
    CGRID_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    account: str
    origin_id: str
    cgrid: str
    def __init__(self, tenant: _Optional[str] = ..., account: _Optional[str] = ..., origin_id: _Optional[str] = ..., cgrid: _Optional[str] = ...) -> None: ...

class ActiveSession(_message.Message):
    __slots__ = ("cgrid", "run_id", "origin_id", "origin_host", "tenant", "account", "destination", "request_type", "answer_time_unix_ns", "usage_ns", "debited_usage_ns", "cost", "max_usage_left_ns")
    CGRID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_HOST_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TIME_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    DEBITED_USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    MAX_USAGE_LEFT_NS_FIELD_NUMBER: _ClassVar[int]
    cgrid: str
    run_id: str
    origin_id: str
    origin_host: str
    tenant: str
    account: str
    destination: str
    request_type: str
    answer_time_unix_ns: int
    usage_ns: int
    debited_usage_ns: int
    cost: str
    max_usage_left_ns: int
    def __init__(self, cgrid: _Optional[str] = ..., run_id: _Optional[str] = ..., origin_id: _Optional[str] = ..., origin_host: _Optional[str] = ..., tenant: _Optional[str] = ..., account: _Optional[str] = ..., destination: _Optional[str] = ..., request_type: _Optional[str] = ..., answer_time_unix_ns: _Optional[int] = ..., usage_ns: _Optional[int] = ..., debited_usage_ns: _Optional[int] = ..., cost: _Optional[str] = ..., max_usage_left_ns: _Optional[int] = ...) -> None: ...

class ActiveSessionsResponse(_message.Message):
    __slots__ = ("sessions",)
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[ActiveSession]
    def __init__(self, sessions: _Optional[_Iterable[_Union[ActiveSession, _Mapping]]] = ...) -> None: ...

class DisconnectSessionRequest(_message.Message):
    __slots__ = ("cgrid", "origin_id", "reason")
    CGRID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    cgrid: str
    origin_id: str
    reason: str
    def __init__(self, cgrid: _Optional[str] = ..., origin_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
