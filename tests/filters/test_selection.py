"""Filter indexes and profile selection (docs/profiles.md)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cgrpy.event import CGREvent
from cgrpy.filters import ActivationInterval, FilterError, FilterS
from cgrpy.filters.selection import ProfileEntry, ProfileIndex, cut_after_blocker

T = "cgrates.org"


def entry(pid, filter_ids=(), weight=0, contexts=(), activation=None, blocker=False):
    return ProfileEntry(T, pid, tuple(filter_ids), activation, Decimal(weight), pid,
                        contexts=tuple(contexts), blocker=blocker)


def ev(time=None, **fields):
    return CGREvent(tenant=T, time=time, event=dict(fields))


FS = FilterS.from_rows([
    {"Tenant": T, "ID": "GT_ONLY", "Type": "*gt", "Element": "~*req.Usage", "Values": "10",
     "ActivationInterval": ""},
    {"Tenant": T, "ID": "ACC_AND_GT", "Type": "*string", "Element": "~*req.Account",
     "Values": "1001", "ActivationInterval": ""},
    {"Tenant": T, "ID": "ACC_AND_GT", "Type": "*gt", "Element": "~*req.Usage", "Values": "10",
     "ActivationInterval": ""},
])


def test_candidates_come_from_string_index_and_none_key():
    idx = ProfileIndex(FS, [
        entry("A1001", ["*string:~*req.Account:1001"]),
        entry("A1002", ["*string:~*req.Account:1002"]),
        entry("NOFILTER"),
    ])
    assert {e.id for e in idx.candidates(T, ev(Account="1001"))} == {"A1001", "NOFILTER"}
    assert {e.id for e in idx.candidates(T, ev(Account=1002))} == {"A1002", "NOFILTER"}
    assert {e.id for e in idx.candidates(T, ev())} == {"NOFILTER"}
    assert idx.candidates("other.tenant", ev(Account="1001")) == []


def test_profile_without_string_or_prefix_rule_is_never_selected():
    # v0.10 quirk kept (docs/filters.rst): filters but no *string/*prefix rule -> invisible
    idx = ProfileIndex(FS, [entry("GT", ["GT_ONLY"]), entry("NOT", ["*notstring:~*req.A:1"]),
                            entry("MIXED", ["ACC_AND_GT"])])
    e = ev(Account="1001", Usage=20, A="2")
    assert idx.select(T, e) == ["MIXED"]
    assert idx.candidate_ids(T, e) == {"MIXED"}
    # explicit ID lists bypass the index
    assert idx.select(T, e, ids=["GT", "NOT", "MIXED"]) == ["GT", "MIXED", "NOT"]
    # indexed_selects=false: every profile of the tenant is a candidate
    flat = ProfileIndex(FS, idx.entries(), indexed_selects=False)
    assert flat.select(T, e) == ["GT", "MIXED", "NOT"]


def test_prefix_index_disabled_by_default_and_longest_prefix_wins():
    entries = [entry("P10", ["*prefix:~*req.Destination:10"]),
               entry("P1002", ["*prefix:~*req.Destination:1002"])]
    assert ProfileIndex(FS, entries).select(T, ev(Destination="1002")) == []
    idx = ProfileIndex(FS, entries, prefix_fields=["Destination"])
    assert idx.select(T, ev(Destination="1002")) == ["P1002"]
    assert idx.select(T, ev(Destination="1003")) == ["P10"]
    assert idx.select(T, ev(Destination="2003")) == []


def test_string_fields_restrict_lookup():
    idx = ProfileIndex(FS, [entry("A", ["*string:~*req.Account:1001"]),
                            entry("S", ["*string:~*req.Subject:1001"])],
                       string_fields=["Account"])
    assert idx.select(T, ev(Account="1001", Subject="1001")) == ["A"]


def test_ordering_weight_desc_then_id_and_blockers():
    idx = ProfileIndex(FS, [entry("b", weight=10), entry("a", weight=10), entry("c", weight=20),
                            entry("d", weight=0, blocker=True), entry("e", weight=-1)])
    got = idx.matching(T, ev())
    assert [e.id for e in got] == ["c", "a", "b", "d", "e"]
    assert [e.id for e in cut_after_blocker(got, lambda e: e.blocker)] == ["c", "a", "b", "d"]


def test_activation_interval_checked_only_when_event_has_time():
    ai = ActivationInterval(datetime(2014, 1, 1, tzinfo=UTC), datetime(2015, 1, 1, tzinfo=UTC))
    idx = ProfileIndex(FS, [entry("X", activation=ai)])
    assert idx.select(T, ev(time=datetime(2014, 6, 1, tzinfo=UTC))) == ["X"]
    assert idx.select(T, ev(time=datetime(2016, 6, 1, tzinfo=UTC))) == []
    assert idx.select(T, ev()) == ["X"]  # no Time: expired profile still matches (quirk kept)


def test_contexts_fall_back_to_any_only_without_candidates():
    idx = ProfileIndex(FS, [
        entry("SESS", ["*string:~*req.Account:1001", "*string:~*req.Dest:x"], contexts=["*sessions"]),
        entry("ANY", ["*string:~*req.Account:1001"], contexts=["*any"]),
    ])
    assert idx.select(T, ev(Account="1001", Dest="x"), "*sessions") == ["SESS"]
    # candidates exist in *sessions but fail -> no fallback (quirk kept)
    assert idx.select(T, ev(Account="1001", Dest="y"), "*sessions") == []
    assert idx.select(T, ev(Account="1001"), "*cdrs") == ["ANY"]


def test_filter_errors_abort_and_missing_filter_rejected_at_build():
    idx = ProfileIndex(FS, [entry("E", ["*string:~*req.Account:1001", "*gt:~*req.U:1"])])
    with pytest.raises(FilterError, match="incomparable"):
        idx.select(T, ev(Account="1001", U=""))
    with pytest.raises(FilterError, match="profile cgrates.org:BAD: NOT_FOUND:NOPE"):
        ProfileIndex(FS, [entry("BAD", ["NOPE"])])


def test_index_returns_only_the_hit_among_many_profiles():
    entries = [entry(f"P{i}", [f"*string:~*req.Account:{i}"]) for i in range(5000)]
    idx = ProfileIndex(FS, entries)
    assert idx.candidate_ids(T, ev(Account="4242", Destination="1002")) == {"P4242"}
    assert idx.select(T, ev(Account=4242)) == ["P4242"]


def test_destinations_filter_needs_destination_data():
    with pytest.raises(FilterError, match="no destination data loaded"):
        FilterS().passes(T, ["*destinations:~*req.Destination:DST_FS"], ev(Destination="1002"))
