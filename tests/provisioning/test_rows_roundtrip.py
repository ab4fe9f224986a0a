"""Actions and ActionTriggers rows -> their provisioning JSON -> rows is the identity, over every
set of the four shared tariff plans (`cgr profiles set --csv` goes through that
JSON, so a lossy step changed what was stored: an empty balance cell became a 0/false filter)."""

from __future__ import annotations

import pytest

from cgrpy.tariffplan import profiles as tp
from cgrpy.tariffplan.csvread import read_folder
from tests.conftest import TARIFFPLANS


@pytest.mark.parametrize("plan", ["tutorial", "oldtutorial", "testtp", "engine_libtest"])
@pytest.mark.parametrize("kind", ["Actions", "ActionTriggers"])
def test_rows_json_rows_is_identity(plan: str, kind: str) -> None:
    rows = read_folder(TARIFFPLANS / plan)
    k = tp.kind(kind)
    for ident in tp.ids_of(k, rows, None):
        obj = tp.from_rows(k, rows, "", ident)
        _tenant, _ident, changes = tp.to_changes(k, obj, "cgrates.org")
        assert changes[0].rows == tp.rows_of(k, rows, "", ident), ident


@pytest.mark.parametrize("plan", ["tutorial", "oldtutorial", "testtp", "engine_libtest"])
@pytest.mark.parametrize("kind", ["TPTiming", "TPDestination", "TPRate", "TPDestinationRate", "TPRatingPlan",
                                  "TPRatingProfile"])
def test_rating_tp_objects_survive_json(plan: str, kind: str) -> None:
    """Every rating object of the shared plans read as its TP API JSON and stored back gives the
    same JSON and the same rows, up to an empty number cell becoming 0 (what the loader reads)."""
    rows = read_folder(TARIFFPLANS / plan)
    k = tp.kind(kind)
    keys = {(r["Tenant"] if k.tenant_col else "", k.row_ident(r)) for r in rows.get(k.file, [])}
    assert keys or kind == "TPTiming"
    for tenant, ident in sorted(keys):
        obj = tp.from_rows(k, rows, tenant, ident)
        _tenant, _ident, changes = tp.to_changes(k, obj, "cgrates.org")
        assert (_tenant, _ident) == (tenant, ident)
        assert tp.from_rows(k, {k.file: changes[0].rows}, tenant, ident) == obj, ident
        stored = tp.rows_of(k, rows, tenant, ident)
        for new, old in zip(changes[0].rows, stored, strict=True):
            changed = [c for c in new if new[c] != old.get(c, "")]  # a CSV row has no LoadId
            assert all(old[c] == "" and new[c] == "0" for c in changed), (ident, changed)
