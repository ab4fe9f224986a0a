"""The CGRateS v0.10 tariff-plan files and their columns, in CSV order.

This is the contract between the loader, the StorDB ``tp_*`` tables and every service that
compiles a tariff plan: a row travels as ``dict[column name -> raw cell text]`` with these names.
"""

from __future__ import annotations

FILE_COLUMNS: dict[str, tuple[str, ...]] = {
    "Timings": ("Tag", "Years", "Months", "MonthDays", "WeekDays", "Time"),
    "Destinations": ("Id", "Prefix"),
    "Rates": ("Id", "ConnectFee", "Rate", "RateUnit", "RateIncrement", "GroupIntervalStart"),
    "DestinationRates": (
        "Id", "DestinationId", "RatesTag", "RoundingMethod", "RoundingDecimals", "MaxCost",
        "MaxCostStrategy",
    ),
    "RatingPlans": ("Id", "DestinationRatesId", "TimingTag", "Weight"),
    "RatingProfiles": (
        "Tenant", "Category", "Subject", "ActivationTime", "RatingPlanId", "RatesFallbackSubject",
    ),
    "SharedGroups": ("Id", "Account", "Strategy", "RatingSubject"),
    "Actions": (
        "ActionsId", "Action", "ExtraParameters", "Filter", "BalanceId", "BalanceType",
        "Categories", "DestinationIds", "RatingSubject", "SharedGroup", "ExpiryTime", "TimingIds",
        "Units", "BalanceWeight", "BalanceBlocker", "BalanceDisabled", "Weight",
    ),
    "ActionPlans": ("Id", "ActionsId", "TimingId", "Weight"),
    "ActionTriggers": (
        "Tag", "UniqueId", "ThresholdType", "ThresholdValue", "Recurrent", "MinSleep",
        "ExpiryTime", "ActivationTime", "BalanceTag", "BalanceType", "BalanceCategories",
        "BalanceDestinationIds", "BalanceRatingSubject", "BalanceSharedGroup",
        "BalanceExpiryTime", "BalanceTimingIds", "BalanceWeight", "BalanceBlocker",
        "BalanceDisabled", "ActionsId", "Weight",
    ),
    "AccountActions": (
        "Tenant", "Account", "ActionPlanId", "ActionTriggersId", "AllowNegative", "Disabled",
    ),
    "Resources": (
        "Tenant", "Id", "FilterIDs", "ActivationInterval", "TTL", "Limit", "AllocationMessage",
        "Blocker", "Stored", "Weight", "ThresholdIDs",
    ),
    "Stats": (
        "Tenant", "Id", "FilterIDs", "ActivationInterval", "QueueLength", "TTL", "MinItems",
        "Metrics", "MetricFilterIDs", "Stored", "Blocker", "Weight", "ThresholdIDs",
    ),
    "Thresholds": (
        "Tenant", "Id", "FilterIDs", "ActivationInterval", "MaxHits", "MinHits", "MinSleep",
        "Blocker", "Weight", "ActionIDs", "Async",
    ),
    "Filters": ("Tenant", "ID", "Type", "Element", "Values", "ActivationInterval"),
    "Suppliers": (
        "Tenant", "ID", "FilterIDs", "ActivationInterval", "Sorting", "SortingParameters",
        "SupplierID", "SupplierFilterIDs", "SupplierAccountIDs", "SupplierRatingPlanIDs",
        "SupplierResourceIDs", "SupplierStatIDs", "SupplierWeight", "SupplierBlocker",
        "SupplierParameters", "Weight",
    ),
    "Attributes": (
        "Tenant", "ID", "Contexts", "FilterIDs", "ActivationInterval", "AttributeFilterIDs",
        "Path", "Type", "Value", "Blocker", "Weight",
    ),
    "Chargers": (
        "Tenant", "ID", "FilterIDs", "ActivationInterval", "RunID", "AttributeIDs", "Weight",
    ),
    "DispatcherProfiles": (
        "Tenant", "ID", "Contexts", "FilterIDs", "ActivationInterval", "Strategy",
        "StrategyParameters", "ConnID", "ConnFilterIDs", "ConnWeight", "ConnBlocker",
        "ConnParameters", "Weight",
    ),
    "DispatcherHosts": ("Tenant", "ID", "Address", "Transport", "TLS"),
}

# A tariff plan as raw rows: file name (without .csv) -> rows, each column name -> cell text.
TariffPlanRows = dict[str, list[dict[str, str]]]

# Cells a file's rows keep in the StorDB that its CSV has no column for: a rating profile's
# LoadId (v0.10's TPRatingProfile.LoadId), set by APIerSv1.SetTPRatingProfile or, for a folder,
# by the load that stored it (CSV_LOAD_ID). Never read from or written to a CSV file; only
# ``read_tariffplan(..., extras=True)`` returns them, "" when a row has none.
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {"RatingProfiles": ("LoadId",)}
# The LoadId v0.10 gives the rating profiles of a CSV folder stored in the StorDB (cgr-loader
# -to_stordb, ImportTariffPlanFromFolder); "_<RunId>" is appended when the import names one.
CSV_LOAD_ID = "CSVLOAD"


def stored_columns(file: str) -> tuple[str, ...]:
    """The columns a row of ``file`` has in the StorDB: its CSV columns, then its extras."""
    return FILE_COLUMNS[file] + EXTRA_COLUMNS.get(file, ())
