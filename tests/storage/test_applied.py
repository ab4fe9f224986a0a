"""An item's recent event ids (cgrpy.storage.applied): kept for the window and up to the cap,
oldest dropped first; only a saved item's new ids wait to be written."""

from __future__ import annotations

from cgrpy.storage import applied
from cgrpy.storage.applied import AppliedIds


def test_ids_are_kept_for_the_window_and_up_to_the_cap(monkeypatch) -> None:
    ids = AppliedIds(durable=True)
    ids.add("e1", 0)
    ids.add("e2", applied.WINDOW_NS // 2)
    assert "e1" in ids and "e2" in ids and ids.pending == [("e1", 0), ("e2", applied.WINDOW_NS // 2)]
    ids.add("e3", applied.WINDOW_NS + 1)  # e1 is older than the window now
    assert "e1" not in ids and "e2" in ids and "e3" in ids
    ids.add("", applied.WINDOW_NS + 2)  # no id: nothing to recognise a repeat by
    assert len(ids) == 2
    monkeypatch.setattr(applied, "MAX_PER_ITEM", 2)
    ids.add("e4", applied.WINDOW_NS + 3)
    assert "e2" not in ids and len(ids) == 2


def test_loaded_ids_replace_and_a_memory_only_item_keeps_nothing_pending() -> None:
    ids = AppliedIds()
    ids.add("x", 5)
    assert ids.pending == []
    ids.load([("b", 20), ("a", 10)])
    assert "x" not in ids and "a" in ids and "b" in ids
    other = AppliedIds(durable=True)
    other.carry(ids)
    assert "a" in other and other.pending == []
