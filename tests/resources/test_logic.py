"""ResourceS's pure pieces: usage lifetime, room, the profile rows, undo of a failed write."""

from __future__ import annotations

import pytest

from cgrpy.errors import CGRError
from services.resources.logic import (
    Change,
    Resource,
    ResourceProfile,
    Usage,
    effective_ttl,
    has_room,
)
from services.resources.rows import profiles_from_rows

ROW = {"Tenant": "cgrates.org", "Id": "R1", "FilterIDs": "F1", "ActivationInterval": "", "TTL": "-1",
       "Limit": "7", "AllocationMessage": "", "Blocker": "false", "Stored": "true", "Weight": "10",
       "ThresholdIDs": "*none"}


def test_effective_ttl() -> None:
    p = ResourceProfile("t", "R", usage_ttl_ns=-1)
    assert effective_ttl(None, p) is None  # -1 profile: until released
    assert effective_ttl(0, p) is None  # a request TTL of 0 falls back to the profile
    assert effective_ttl(5, p) == 5
    assert effective_ttl(None, ResourceProfile("t", "R", usage_ttl_ns=0)) == 0  # not recorded
    assert effective_ttl(None, ResourceProfile("t", "R", usage_ttl_ns=10)) == 10


def test_room_limit_unlimited_and_leave_out() -> None:
    r = Resource("t", "R", {"a": Usage("a", 3), "b": Usage("b", 4)})
    assert has_room(ResourceProfile("t", "R", limit=8), r, 1)
    assert not has_room(ResourceProfile("t", "R", limit=7), r, 1)
    assert has_room(ResourceProfile("t", "R", limit=7), r, 1, leave_out="a")
    assert has_room(ResourceProfile("t", "R", limit=-1), r, 10**9)


def test_rows_merge_and_bad_cells() -> None:
    (p,) = profiles_from_rows([ROW, {**ROW, "FilterIDs": "F2", "ThresholdIDs": "", "Limit": ""}], "cgrates.org")
    assert (p.filter_ids, p.limit, p.usage_ttl_ns, p.stored, p.threshold_ids) == (("F1", "F2"), 7, -1, True, ("*none",))
    with pytest.raises(CGRError) as info:
        profiles_from_rows([{**ROW, "Limit": "seven"}], "cgrates.org")
    assert info.value.message == "SERVER_ERROR: Resources cgrates.org:R1 column Limit: not a number: 'seven'"
    with pytest.raises(CGRError, match="column Blocker"):
        profiles_from_rows([{**ROW, "Blocker": "maybe"}], "cgrates.org")


def test_change_keeps_the_first_value_before() -> None:
    r = Resource("t", "R")
    c = Change()
    c.touch(r, "u", None)
    c.touch(r, "u", Usage("u", 1))
    assert c.before == {("t", "R", "u"): None} and c.resources == [r]
