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
