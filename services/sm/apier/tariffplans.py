"""Tariff plans over JSON-RPC: ``APIerSv1.LoadTariffPlanFromFolder``. The loading itself is
:func:`cgrpy.tariffplan.apply.load_and_reload`; this module checks the argument and maps errors."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from cgrpy.errors import CGRError
from cgrpy.security import PathRefused, folder_under_roots, roots_of
from services.sm.apier.args import Args
from services.sm.apier.core import Context, method


@method("APIerSv1.LoadTariffPlanFromFolder")
async def load_tariff_plan(ctx: Context, a: Args) -> Any:
    """Validate + store the folder as the configured TPID in the StorDB, then ReloadCache on
    every service (what `cgr load` does). ``DryRun``/``Validate`` only validate."""
    # imported here: the loader (CSV columns, validation) is needed only by this call
    from cgrpy.tariffplan.apply import TariffPlanRefused, load_and_reload

    a.require("FolderPath")
    try:  # only under the configured roots, symlinks and .. resolved: nothing else is read
        folder = str(folder_under_roots(a.str("FolderPath"), roots_of(ctx.settings.api_tariffplan_roots),
                                        "FolderPath"))
    except PathRefused as exc:
        raise CGRError("SERVER_ERROR", str(exc)) from None
    if not os.path.isdir(folder):
        raise CGRError("SERVER_ERROR", f"FolderPath: {a.str('FolderPath')} is not a folder")
    if ctx.engine is None:
        raise CGRError("NOT_IMPLEMENTED", "no StorDB")
    engine = await asyncio.to_thread(ctx.engine)
    dry = bool(a.bool("DryRun") or a.bool("Validate"))
    try:
        await asyncio.to_thread(load_and_reload, ctx.settings, engine, folder, dry_run=dry, echo_values=False)
    except TariffPlanRefused as exc:
        raise CGRError("SERVER_ERROR", str(exc)) from None
    return "OK"
