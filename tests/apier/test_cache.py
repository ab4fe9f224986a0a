"""CacheSv1 against the real suite (tutorial plan, Postgres): counts are what the services compiled,
a reload makes them take what the StorDB holds now, bad arguments are refused."""

from __future__ import annotations

import pytest

from cgrpy.storage.db import make_engine
from cgrpy.storage.tariffplans import replace_rows
from tests.apier.jsonrpc_client import err, ok

pytestmark = pytest.mark.e2e

# distinct IDs in tariffplans/tutorial
TUTORIAL = {"*attribute_profiles": 10, "*charger_profiles": 2, "*destinations": 4, "*rating_plans": 5,
            "*rating_profiles": 4, "*threshold_profiles": 2, "*statqueue_profiles": 2}


def _items(api, *ids: str) -> dict[str, int]:
    stats = ok(api.call("CacheSv1.GetCacheStats", {"CacheIDs": list(ids)}))
    assert all(v["Groups"] == 0 for v in stats.values())
    return {k: v["Items"] for k, v in stats.items()}


def _add_charger(suite, cid: str) -> None:
    """A Chargers row written to the StorDB behind the services' back (no reload)."""
    engine = make_engine(suite.env["CGRPY_STORDB_URL"])
    try:
        row = {"Tenant": "cgrates.org", "ID": cid, "FilterIDs": "", "ActivationInterval": "", "RunID": cid,
               "AttributeIDs": "*none", "Weight": "5"}
        replace_rows(engine, suite.env.get("CGRPY_TPID", "cgrpy"),
                     [("Chargers", {"Tenant": "cgrates.org", "ID": cid}, [row])])
    finally:
        engine.dispose()


def _runs(api) -> set[str]:
    runs = ok(api.call("ChargerSv1.ProcessEvent", {"Tenant": "cgrates.org", "Event": {"Account": "1001"}}))
    return {r["ChargerSProfile"] for r in runs}


def test_get_cache_stats_counts_the_tutorial(tcp):
    assert _items(tcp, *TUTORIAL) == TUTORIAL
    everything = ok(tcp.call("CacheSv1.GetCacheStats", {}))
    assert everything["*charger_profiles"] == {"Items": 2, "Groups": 0}
    assert everything["*filters"]["Items"] > 0


def test_reload_load_flush_clear_take_the_stordb(tcp, http, suite):
    _add_charger(suite, "CH_CACHE_1")
    # not reloaded yet: the services still hold what they compiled
    assert _items(tcp, "*charger_profiles") == {"*charger_profiles": 2}
    assert "CH_CACHE_1" not in _runs(tcp)
    assert ok(http.call("CacheSv1.ReloadCache", {"ChargerProfileIDs": ["CH_CACHE_1"]})) == "OK"
    assert _items(tcp, "*charger_profiles") == {"*charger_profiles": 3}
    assert "CH_CACHE_1" in _runs(tcp)
    _add_charger(suite, "CH_CACHE_2")
    assert ok(tcp.call("CacheSv1.LoadCache", {"ChargerProfileIDs": ["CH_CACHE_2"]})) == "OK"
    assert _items(http, "*charger_profiles") == {"*charger_profiles": 4}
    _add_charger(suite, "CH_CACHE_3")
    assert ok(tcp.call("CacheSv1.FlushCache", {"ChargerProfileIDs": ["CH_CACHE_3"]})) == "OK"
    assert _items(tcp, "*charger_profiles") == {"*charger_profiles": 5}
    _add_charger(suite, "CH_CACHE_4")
    assert ok(http.call("CacheSv1.Clear", {"CacheIDs": ["*charger_profiles"]})) == "OK"
    assert _items(tcp, "*charger_profiles") == {"*charger_profiles": 6}
    assert {"CH_CACHE_1", "CH_CACHE_2", "CH_CACHE_3", "CH_CACHE_4"} <= _runs(tcp)
    # the other services were left alone, and still count the same
    assert _items(tcp, "*attribute_profiles", "*rating_plans") == {"*attribute_profiles": 10, "*rating_plans": 5}


def test_cache_bad_arguments(api):
    assert err(api.call("CacheSv1.ReloadCache", {"Bogus": ["x"]})) == "SERVER_ERROR: Bogus: unknown argument"
    assert err(api.call("CacheSv1.ReloadCache", {"AttributeProfileIDs": "ATTR"})) .startswith(
        "SERVER_ERROR: AttributeProfileIDs")
    assert err(api.call("CacheSv1.FlushCache", {"DispatcherProfileIDs": ["D1"]})) == \
        "NOT_IMPLEMENTED:DispatcherProfileIDs"
    assert err(api.call("CacheSv1.Clear", {"CacheIDs": ["*nope"]})) == "SERVER_ERROR: CacheIDs: unknown cache ID *nope"
    assert err(api.call("CacheSv1.GetCacheStats", {"CacheIDs": ["*nope"]})) == \
        "SERVER_ERROR: CacheIDs: unknown cache ID *nope"
