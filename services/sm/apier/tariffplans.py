"""Tariff-plan folders over JSON-RPC: ``APIerSv1.LoadTariffPlanFromFolder`` (store as the live
plan and reload) and ``APIerSv1.ImportTariffPlanFromFolder`` (store as a TPid of the StorDB, for
the TP API and LoadTariffPlanFromStorDb). The loading itself is :mod:`cgrpy.tariffplan.apply` /
:func:`cgrpy.tariffplan.loader.load_folder`; this module checks the arguments and maps errors."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from typing import Any

from sqlalchemy.engine import Engine

from cgrpy.errors import CGRError
from cgrpy.security import PathRefused, folder_under_roots, roots_of
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method


async def _folder(ctx: Context, a: Args) -> tuple[str, Engine]:
    """The argument's FolderPath, only under the configured roots (symlinks and .. resolved:
    nothing else is read), and the StorDB."""
    a.require("FolderPath")
    try:
        folder = str(folder_under_roots(a.str("FolderPath"), roots_of(ctx.settings.api_tariffplan_roots),
                                        "FolderPath"))
    except PathRefused as exc:
        raise CGRError("SERVER_ERROR", str(exc)) from None
    if not os.path.isdir(folder):
        raise CGRError("SERVER_ERROR", f"FolderPath: {a.str('FolderPath')} is not a folder")
    if ctx.engine is None:
        raise CGRError("NOT_IMPLEMENTED", "no StorDB")
    return folder, await asyncio.to_thread(ctx.engine)


@method("APIerSv1.LoadTariffPlanFromFolder")
async def load_tariff_plan(ctx: Context, a: Args) -> Any:
    """Validate + store the folder as the configured TPID in the StorDB, then ReloadCache on
    every service (what `cgr load` does). ``DryRun``/``Validate`` only validate."""
    # imported here: the loader (CSV columns, validation) is needed only by this call
    from cgrpy.tariffplan.apply import TariffPlanRefused, load_and_reload

    folder, engine = await _folder(ctx, a)
    dry = bool(a.bool("DryRun") or a.bool("Validate"))
    try:
        await asyncio.to_thread(load_and_reload, ctx.settings, engine, folder, dry_run=dry, echo_values=False)
    except TariffPlanRefused as exc:
        raise CGRError("SERVER_ERROR", str(exc)) from None
    return "OK"


@method("APIerSv1.ImportTariffPlanFromFolder")
async def import_tariff_plan(ctx: Context, a: Args) -> Any:
    """AttrImportTPFromFolder {TPid, FolderPath, RunId, DryRun}: validate the folder like `cgr load`
    and store it as TPid, replacing what that TPid held; nothing live changes until
    LoadTariffPlanFromStorDb. Its rating profiles get LoadId ``CSVLOAD`` (``CSVLOAD_<RunId>``
    with a RunId), as v0.10's import gives them. The configured TPID is the live plan: importing into it is
    LoadTariffPlanFromFolder (stored and reloaded), never a live plan out of step with the
    services. ``CsvSeparator`` other than ``,`` is NOT_IMPLEMENTED."""
    from cgrpy.tariffplan.columns import CSV_LOAD_ID
    from cgrpy.tariffplan.loader import load_folder

    a.require("TPid")
    if a.str("CsvSeparator") not in ("", ","):
        raise CGRError("NOT_IMPLEMENTED", "CsvSeparator")
    if a.str("TPid") == ctx.settings.tpid:
        return await load_tariff_plan(ctx, a)
    folder, engine = await _folder(ctx, a)
    load_id = f"{CSV_LOAD_ID}_{a.str('RunId')}" if a.str("RunId") else CSV_LOAD_ID
    result = await asyncio.to_thread(load_folder, folder, engine=engine, tpid=a.str("TPid"),
                                     dry_run=bool(a.bool("DryRun")), load_id=load_id)
    if not result.ok:  # where and what, never a cell's text (see load_and_reload)
        shown = "; ".join(str(replace(p, value=None)) for p in result.problems[:5])
        raise CGRError("SERVER_ERROR", f"{len(result.problems)} problem(s), nothing imported: {shown}")
    return "OK"
