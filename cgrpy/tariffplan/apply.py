"""Load a tariff-plan folder into the StorDB and make the running services serve it: the one
step behind ``APIerSv1.LoadTariffPlanFromFolder`` (``cgr load`` does the same from the CLI,
with its own progress display and exit codes)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.engine import Engine

from cgrpy.config import Settings
from cgrpy.runtime.reload import reload_all
from cgrpy.tariffplan.loader import LoadAbortedError, load_folder


class TariffPlanRefused(Exception):
    """The folder was not loaded, or a service did not reload it; the message says why."""


def load_and_reload(settings: Settings, engine: Engine, folder: str, *, dry_run: bool,
                    echo_values: bool = True) -> None:
    """Validate and store ``folder`` as ``settings.tpid``, then ReloadCache on every service.

    Nothing is written when a row is refused (all problems counted, the first five named);
    ``dry_run`` only validates. A service that is not running is skipped; one that answers
    with an error makes the load fail after the StorDB write (its name and error in the
    message). Blocking: call it off the event loop."""
    try:
        result = load_folder(folder, engine=engine, tpid=settings.tpid, dry_run=dry_run)
    except LoadAbortedError as exc:
        raise TariffPlanRefused(str(exc)) from None
    if not result.ok:
        # echo_values=False: where and what, never a cell's text (an API caller must not be
        # handed a file's content through an error)
        shown = result.problems[:5] if echo_values else [replace(p, value=None) for p in result.problems[:5]]
        problems = "; ".join(str(p) for p in shown)
        raise TariffPlanRefused(f"{len(result.problems)} problem(s), nothing loaded: {problems}")
    if dry_run:
        return
    outcome = reload_all(settings, settings.tpid)
    failed = {k: v for k, v in outcome.items() if v not in ("reloaded", "not running")}
    if failed:
        raise TariffPlanRefused("reload failed: " + ", ".join(f"{k}: {v}" for k, v in failed.items()))
