from cgrates.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallDescriptor(_message.Message):
    __slots__ = ("tenant", "category", "subject", "account", "destination", "tor", "time_start_unix_ns", "usage_ns", "duration_index_ns", "loop_index", "cgrid", "run_id", "max_cost_so_far", "deny_negative_account", "rating_plan_id", "force_duration", "max_rate", "max_rate_unit_ns", "perform_rounding")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    TOR_FIELD_NUMBER: _ClassVar[int]
    TIME_START_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    DURATION_INDEX_NS_FIELD_NUMBER: _ClassVar[int]
    LOOP_INDEX_FIELD_NUMBER: _ClassVar[int]
    CGRID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_SO_FAR_FIELD_NUMBER: _ClassVar[int]
    DENY_NEGATIVE_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    RATING_PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_DURATION_FIELD_NUMBER: _ClassVar[int]
    MAX_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_RATE_UNIT_NS_FIELD_NUMBER: _ClassVar[int]
    PERFORM_ROUNDING_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    category: str
    subject: str
    account: str
    destination: str
    tor: str
    time_start_unix_ns: int
    usage_ns: int
    duration_index_ns: int
    loop_index: int
    cgrid: str
    run_id: str
    max_cost_so_far: str
    deny_negative_account: bool
    rating_plan_id: str
    force_duration: bool
    max_rate: str
    max_rate_unit_ns: int
    perform_rounding: bool
    def __init__(self, tenant: _Optional[str] = ..., category: _Optional[str] = ..., subject: _Optional[str] = ..., account: _Optional[str] = ..., destination: _Optional[str] = ..., tor: _Optional[str] = ..., time_start_unix_ns: _Optional[int] = ..., usage_ns: _Optional[int] = ..., duration_index_ns: _Optional[int] = ..., loop_index: _Optional[int] = ..., cgrid: _Optional[str] = ..., run_id: _Optional[str] = ..., max_cost_so_far: _Optional[str] = ..., deny_negative_account: _Optional[bool] = ..., rating_plan_id: _Optional[str] = ..., force_duration: _Optional[bool] = ..., max_rate: _Optional[str] = ..., max_rate_unit_ns: _Optional[int] = ..., perform_rounding: _Optional[bool] = ...) -> None: ...

class CostResponse(_message.Message):
    __slots__ = ("cost", "usage_ns", "cost_details_json", "duplicate", "max_cost_reached", "call_cost_json", "max_rate", "max_rate_unit_ns")
    COST_FIELD_NUMBER: _ClassVar[int]
    USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    COST_DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_REACHED_FIELD_NUMBER: _ClassVar[int]
    CALL_COST_JSON_FIELD_NUMBER: _ClassVar[int]
    MAX_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_RATE_UNIT_NS_FIELD_NUMBER: _ClassVar[int]
    cost: str
    usage_ns: int
    cost_details_json: str
    duplicate: bool
    max_cost_reached: bool
    call_cost_json: str
    max_rate: str
    max_rate_unit_ns: int
    def __init__(self, cost: _Optional[str] = ..., usage_ns: _Optional[int] = ..., cost_details_json: _Optional[str] = ..., duplicate: _Optional[bool] = ..., max_cost_reached: _Optional[bool] = ..., call_cost_json: _Optional[str] = ..., max_rate: _Optional[str] = ..., max_rate_unit_ns: _Optional[int] = ...) -> None: ...

class MaxUsageResponse(_message.Message):
    __slots__ = ("max_usage_ns",)
    MAX_USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    max_usage_ns: int
    def __init__(self, max_usage_ns: _Optional[int] = ...) -> None: ...

class DebitRequest(_message.Message):
    __slots__ = ("call", "request_id", "request_type", "cost", "allow_partial", "want_call_cost", "want_event_cost", "keep_event_cost")
    CALL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    WANT_CALL_COST_FIELD_NUMBER: _ClassVar[int]
    WANT_EVENT_COST_FIELD_NUMBER: _ClassVar[int]
    KEEP_EVENT_COST_FIELD_NUMBER: _ClassVar[int]
    call: CallDescriptor
    request_id: str
    request_type: str
    cost: str
    allow_partial: bool
    want_call_cost: bool
    want_event_cost: bool
    keep_event_cost: bool
    def __init__(self, call: _Optional[_Union[CallDescriptor, _Mapping]] = ..., request_id: _Optional[str] = ..., request_type: _Optional[str] = ..., cost: _Optional[str] = ..., allow_partial: _Optional[bool] = ..., want_call_cost: _Optional[bool] = ..., want_event_cost: _Optional[bool] = ..., keep_event_cost: _Optional[bool] = ...) -> None: ...

class RefundRequest(_message.Message):
    __slots__ = ("debit_request_ids", "keep_usage_ns", "refund_id", "round_kept", "want_event_cost")
    DEBIT_REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    KEEP_USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_KEPT_FIELD_NUMBER: _ClassVar[int]
    WANT_EVENT_COST_FIELD_NUMBER: _ClassVar[int]
    debit_request_ids: _containers.RepeatedScalarFieldContainer[str]
    keep_usage_ns: int
    refund_id: str
    round_kept: bool
    want_event_cost: bool
    def __init__(self, debit_request_ids: _Optional[_Iterable[str]] = ..., keep_usage_ns: _Optional[int] = ..., refund_id: _Optional[str] = ..., round_kept: _Optional[bool] = ..., want_event_cost: _Optional[bool] = ...) -> None: ...

class RefundResponse(_message.Message):
    __slots__ = ("refunded_cost", "refunded_usage_ns", "duplicate", "event_cost_json")
    REFUNDED_COST_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_USAGE_NS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    EVENT_COST_JSON_FIELD_NUMBER: _ClassVar[int]
    refunded_cost: str
    refunded_usage_ns: int
    duplicate: bool
    event_cost_json: str
    def __init__(self, refunded_cost: _Optional[str] = ..., refunded_usage_ns: _Optional[int] = ..., duplicate: _Optional[bool] = ..., event_cost_json: _Optional[str] = ...) -> None: ...

class AccountRequest(_message.Message):
    __slots__ = ("tenant", "account")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    account: str
    def __init__(self, tenant: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class Balance(_message.Message):
    __slots__ = ("uuid", "id", "type", "value", "expiry_unix_ns", "weight", "destination_ids", "categories", "rating_subject", "shared_groups", "timing_ids", "disabled", "blocker")
    UUID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_IDS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    RATING_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    SHARED_GROUPS_FIELD_NUMBER: _ClassVar[int]
    TIMING_IDS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    BLOCKER_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    id: str
    type: str
    value: str
    expiry_unix_ns: int
    weight: str
    destination_ids: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    rating_subject: str
    shared_groups: _containers.RepeatedScalarFieldContainer[str]
    timing_ids: _containers.RepeatedScalarFieldContainer[str]
    disabled: bool
    blocker: bool
    def __init__(self, uuid: _Optional[str] = ..., id: _Optional[str] = ..., type: _Optional[str] = ..., value: _Optional[str] = ..., expiry_unix_ns: _Optional[int] = ..., weight: _Optional[str] = ..., destination_ids: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., rating_subject: _Optional[str] = ..., shared_groups: _Optional[_Iterable[str]] = ..., timing_ids: _Optional[_Iterable[str]] = ..., disabled: _Optional[bool] = ..., blocker: _Optional[bool] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("tenant", "id", "balances", "allow_negative", "disabled", "action_trigger_ids", "updated_unix_ns", "json")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    ALLOW_NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    ACTION_TRIGGER_IDS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    id: str
    balances: _containers.RepeatedCompositeFieldContainer[Balance]
    allow_negative: bool
    disabled: bool
    action_trigger_ids: _containers.RepeatedScalarFieldContainer[str]
    updated_unix_ns: int
    json: str
    def __init__(self, tenant: _Optional[str] = ..., id: _Optional[str] = ..., balances: _Optional[_Iterable[_Union[Balance, _Mapping]]] = ..., allow_negative: _Optional[bool] = ..., disabled: _Optional[bool] = ..., action_trigger_ids: _Optional[_Iterable[str]] = ..., updated_unix_ns: _Optional[int] = ..., json: _Optional[str] = ...) -> None: ...

class SetAccountRequest(_message.Message):
    __slots__ = ("tenant", "account", "action_plan_id", "action_triggers_id", "allow_negative", "disabled")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ACTION_PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_TRIGGERS_ID_FIELD_NUMBER: _ClassVar[int]
    ALLOW_NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    account: str
    action_plan_id: str
    action_triggers_id: str
    allow_negative: bool
    disabled: bool
    def __init__(self, tenant: _Optional[str] = ..., account: _Optional[str] = ..., action_plan_id: _Optional[str] = ..., action_triggers_id: _Optional[str] = ..., allow_negative: _Optional[bool] = ..., disabled: _Optional[bool] = ...) -> None: ...

class SetBalanceRequest(_message.Message):
    __slots__ = ("tenant", "account", "balance_type", "value", "balance", "overwrite")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    account: str
    balance_type: str
    value: str
    balance: Balance
    overwrite: bool
    def __init__(self, tenant: _Optional[str] = ..., account: _Optional[str] = ..., balance_type: _Optional[str] = ..., value: _Optional[str] = ..., balance: _Optional[_Union[Balance, _Mapping]] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class ExecuteActionsRequest(_message.Message):
    __slots__ = ("tenant", "account", "actions_id", "event")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    account: str
    actions_id: str
    event: _common_pb2.Event
    def __init__(self, tenant: _Optional[str] = ..., account: _Optional[str] = ..., actions_id: _Optional[str] = ..., event: _Optional[_Union[_common_pb2.Event, _Mapping]] = ...) -> None: ...

class SetAccountActionTriggersRequest(_message.Message):
    __slots__ = ("tenant", "account", "group_id", "unique_id", "action_trigger_json", "request_id", "add_group_ids", "overwrite", "remove")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_TRIGGER_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ADD_GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    account: str
    group_id: str
    unique_id: str
    action_trigger_json: str
    request_id: str
    add_group_ids: _containers.RepeatedScalarFieldContainer[str]
    overwrite: bool
    remove: bool
    def __init__(self, tenant: _Optional[str] = ..., account: _Optional[str] = ..., group_id: _Optional[str] = ..., unique_id: _Optional[str] = ..., action_trigger_json: _Optional[str] = ..., request_id: _Optional[str] = ..., add_group_ids: _Optional[_Iterable[str]] = ..., overwrite: _Optional[bool] = ..., remove: _Optional[bool] = ...) -> None: ...

class VerifyAccountsRequest(_message.Message):
    __slots__ = ("tenant", "accounts")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    accounts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant: _Optional[str] = ..., accounts: _Optional[_Iterable[str]] = ...) -> None: ...

class BalanceDifference(_message.Message):
    __slots__ = ("balance_uuid", "value", "journal_sum")
    BALANCE_UUID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_SUM_FIELD_NUMBER: _ClassVar[int]
    balance_uuid: str
    value: str
    journal_sum: str
    def __init__(self, balance_uuid: _Optional[str] = ..., value: _Optional[str] = ..., journal_sum: _Optional[str] = ...) -> None: ...

class AccountCheck(_message.Message):
    __slots__ = ("tenant", "account", "ok", "error", "differences")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    account: str
    ok: bool
    error: str
    differences: _containers.RepeatedCompositeFieldContainer[BalanceDifference]
    def __init__(self, tenant: _Optional[str] = ..., account: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., differences: _Optional[_Iterable[_Union[BalanceDifference, _Mapping]]] = ...) -> None: ...

class VerifyAccountsResponse(_message.Message):
    __slots__ = ("accounts",)
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    accounts: _containers.RepeatedCompositeFieldContainer[AccountCheck]
    def __init__(self, accounts: _Optional[_Iterable[_Union[AccountCheck, _Mapping]]] = ...) -> None: ...

class Ownership(_message.Message):
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

class ScheduledAction(_message.Message):
    __slots__ = ("next_run_unix_ns", "action_plan_id", "actions_id", "timing_id", "accounts")
    NEXT_RUN_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    ACTION_PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_ID_FIELD_NUMBER: _ClassVar[int]
    TIMING_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    next_run_unix_ns: int
    action_plan_id: str
    actions_id: str
    timing_id: str
    accounts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, next_run_unix_ns: _Optional[int] = ..., action_plan_id: _Optional[str] = ..., actions_id: _Optional[str] = ..., timing_id: _Optional[str] = ..., accounts: _Optional[_Iterable[str]] = ...) -> None: ...

class ScheduledActionsResponse(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[ScheduledAction]
    def __init__(self, actions: _Optional[_Iterable[_Union[ScheduledAction, _Mapping]]] = ...) -> None: ...
