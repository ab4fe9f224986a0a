"""CDRe: export stored CDRs to CSV or fixed-width files (docs/rating.md).

Default export directory: ``$CGRPY_CDRE_PATH``, else ``./var/cdre`` (next to the embedded
StorDB; CGRateS uses ``/var/spool/cgrates/cdre``, which needs root, and the tutorial passes
``/tmp`` explicitly: ``cgr cdrs export --path /tmp``).

Differences from CGRateS v0.10, on purpose:

* Rows are in OrderID order (CGRateS formats CDRs concurrently, so its order is random).
* Cost is printed from the exact decimal, rounding half away from zero (``0.64175`` → ``0.6418``
  at 4 decimals); CGRateS prints the float with ``%.Nf``, so an exact tie comes out by the
  accident of its binary value (``0.64175`` → ``0.6417``).
* ``*sms_usage``/``*mms_usage``/``*data_usage``/``*generic_usage`` header/trailer handlers sum
  the usage of that ToR (CGRateS prints the *voice total).
* An export log (``cdrs_exported``): a CDR is exported once per profile unless
  ``include_exported``. Files are written to a temporary name and renamed, so a reader never
  sees half a file. If the process dies between the rename and the log write, the next export
  repeats those CDRs (at least once, never lost).
* Field and profile ``filters`` are not evaluated here (select with :class:`CdrFilter`);
  AttributeS on export is not implemented. The online formats (``*http_post``,
  ``*http_json_cdr``, ``*amqp_json_cdr``) are exported CDR by CDR from the outbox
  (:mod:`services.cdre.online`), not by this module; the other ``*http_*``/``*amqp_*``/...
  formats are not implemented.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from cgrpy.gotime import RFC3339, go_format, go_rfc3339
from cgrpy.iface import iface_as_string
from cgrpy.units import format_duration, money_str, round_money
from services.cdre.cdr import CDR, DEFAULT_TOR, NOT_RATED
from services.cdre.store import RATED_STATE, CdrFilter, CdrStore, ExportRecord

DEFAULT_PROFILE = "*default"
FILE_CSV = "*file_csv"
FILE_FWV = "*file_fwv"
DRY_RUN = "dry_run"
EXTENSIONS = {FILE_CSV: "csv", FILE_FWV: "fwv"}
# Online formats (cdrs online_cdr_exports): each CDR is posted once stored, from the outbox
# (services/cdre/online.py); a profile in one of these formats is not a file export.
HTTP_POST = "*http_post"
HTTP_JSON_CDR = "*http_json_cdr"
AMQP_JSON_CDR = "*amqp_json_cdr"
ONLINE_FORMATS = (HTTP_POST, HTTP_JSON_CDR, AMQP_JSON_CDR)
GLOBAL_ROUNDING = 5


def default_export_path() -> Path:
    return Path(os.environ.get("CGRPY_CDRE_PATH") or Path("var") / "cdre")


class ExportError(ValueError):
    """A profile/template is invalid or a CDR cannot be formatted; the message says which."""


@dataclass(frozen=True)
class FieldTemplate:
    """One output field. ``value`` is ``;``-separated parts: ``~*req.<Field>`` (with an
    optional ``{*duration_seconds}``/``{*duration_nanoseconds}`` converter) or constant text;
    for ``*handler`` fields the handler name."""

    tag: str
    path: str
    type: str = "*composed"
    value: str = ""
    width: int = 0
    strip: str = ""
    padding: str = ""
    mandatory: bool = False
    layout: str = RFC3339
    rounding_decimals: int | None = None
    cost_shift_digits: int = 0

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.path.split(".", 1)[1] if "." in self.path else self.path


def _exp(name: str, **kw: object) -> FieldTemplate:
    return FieldTemplate(tag=name, path=f"*exp.{name}", value=f"~*req.{name}", **kw)  # type: ignore[arg-type]


DEFAULT_FIELDS: tuple[FieldTemplate, ...] = (
    *(_exp(n) for n in ("CGRID", "RunID", "ToR", "OriginID", "RequestType", "Tenant",
                        "Category", "Account", "Subject", "Destination", "SetupTime")),
    _exp("AnswerTime", layout=RFC3339),
    _exp("Usage"),
    _exp("Cost", rounding_decimals=4),
)


@dataclass(frozen=True)
class ExportProfile:
    id: str = DEFAULT_PROFILE
    export_format: str = FILE_CSV
    export_path: str = ""  # "" = default_export_path()
    field_separator: str = ","
    fields: tuple[FieldTemplate, ...] = DEFAULT_FIELDS
    # Online formats only: posts per CDR before its export is marked failed (CGRateS
    # ``attempts``), and whether one exporter's CDRs are posted one at a time in order
    # (CGRateS ``synchronous``) rather than several at once.
    attempts: int = 1
    synchronous: bool = False

    def __post_init__(self) -> None:
        if self.export_format not in (*EXTENSIONS, DRY_RUN, *ONLINE_FORMATS):
            raise ExportError(
                f"profile {self.id}: export_format {self.export_format!r} not supported "
                f"(use {FILE_CSV}, {FILE_FWV}, {DRY_RUN} or online {', '.join(ONLINE_FORMATS)})"
            )
        if self.attempts < 1:
            raise ExportError(f"profile {self.id}: attempts must be at least 1")
        if self.export_format in ONLINE_FORMATS and not self.export_path:
            raise ExportError(f"profile {self.id}: {self.export_format} needs an export_path "
                              "(the URL to post to)")
        if len(self.field_separator) != 1:
            raise ExportError(f"profile {self.id}: field_separator must be one character")
        for f in self.fields:
            if f.section not in ("*exp", "*hdr", "*trl"):
                raise ExportError(f"profile {self.id}: field {f.tag}: path must start with "
                                  f"*exp., *hdr. or *trl. (got {f.path!r})")


BUILTIN_PROFILES = {DEFAULT_PROFILE: ExportProfile()}


@dataclass
class ExportStats:
    records: int = 0
    first_atime: datetime | None = None
    last_atime: datetime | None = None
    usage_by_tor: dict[str, int] = field(default_factory=dict)
    total_cost: Decimal = Decimal(0)
    first_order_id: int = 0
    last_order_id: int = 0

    def add(self, cdr: CDR) -> None:
        self.records += 1
        if cdr.answer_time is not None:
            if self.first_atime is None or cdr.answer_time < self.first_atime:
                self.first_atime = cdr.answer_time
            if self.last_atime is None or cdr.answer_time > self.last_atime:
                self.last_atime = cdr.answer_time
        self.usage_by_tor[cdr.tor] = self.usage_by_tor.get(cdr.tor, 0) + cdr.usage_ns
        if cdr.cost != NOT_RATED:
            self.total_cost = round_money(self.total_cost + cdr.cost, GLOBAL_ROUNDING)
        if not self.first_order_id or cdr.order_id < self.first_order_id:
            self.first_order_id = cdr.order_id
        self.last_order_id = max(self.last_order_id, cdr.order_id)


@dataclass
class ExportResult:
    path: Path | None  # None when nothing was written
    export_id: str
    total_records: int  # CDRs selected
    exported: int
    total_cost: Decimal
    first_order_id: int
    last_order_id: int
    exported_cgrids: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # CGRID -> reason


# --- formatting --------------------------------------------------------------------------------

_PART = re.compile(r"^~\*req\.([^{}]+)(?:\{([^}]*)\})?$")


def _req_value(cdr: CDR, name: str) -> str:
    main = {
        "CGRID": cdr.cgrid, "RunID": cdr.run_id, "OrderID": str(cdr.order_id),
        "OriginHost": cdr.origin_host, "Source": cdr.source, "OriginID": cdr.origin_id,
        "ToR": cdr.tor, "RequestType": cdr.request_type, "Tenant": cdr.tenant,
        "Category": cdr.category, "Account": cdr.account, "Subject": cdr.subject,
        "Destination": cdr.destination, "SetupTime": go_rfc3339(cdr.setup_time),
        "AnswerTime": go_rfc3339(cdr.answer_time), "Usage": format_duration(cdr.usage_ns),
        "Cost": money_str(cdr.cost), "CostSource": cdr.cost_source,
        "ExtraInfo": cdr.extra_info, "PreRated": iface_as_string(cdr.pre_rated),
        "Partial": iface_as_string(cdr.partial),
    }
    if name in main:
        return main[name]
    return cdr.extra_fields.get(name, "")


def _convert_duration(ns: int, converter: str, tag: str) -> str:
    if converter == "*duration_seconds":
        return money_str(Decimal(ns).scaleb(-9))
    if converter == "*duration_nanoseconds":
        return str(ns)
    if converter in ("", "*duration"):
        return format_duration(ns)
    raise ExportError(f"field {tag}: unknown converter {{{converter}}}")


def format_cost(cost: Decimal, decimals: int, shift: int = 0) -> str:
    """``%.Nf`` of the (shifted) cost from the exact decimal: 1.01 → ``1.0100``, −1 → ``-1.0000``."""
    value = cost.scaleb(shift) if shift else cost
    q = Decimal(1).scaleb(-decimals)
    return f"{value.quantize(q, rounding=ROUND_HALF_UP):f}"


def fit_width(value: str, t: FieldTemplate) -> str:
    """Width handling: strip when longer, pad when shorter, error when neither is set."""
    w = t.width
    if w <= 0 or len(value) == w:
        return value
    if len(value) > w:
        if t.strip == "*right":
            return value[:w]
        if t.strip == "*xright":
            return value[: w - 1] + "x"
        if t.strip == "*left":
            return value[len(value) - w:]
        if t.strip == "*xleft":
            return "x" + value[len(value) - w + 1:]
        raise ExportError(f"field {t.tag}: value {value!r} longer than width {w} and no strip rule")
    pad = w - len(value)
    if t.padding == "*right":
        return value + " " * pad
    if t.padding == "*left":
        return " " * pad + value
    if t.padding == "*zeroleft":
        return "0" * pad + value
    raise ExportError(f"field {t.tag}: value {value!r} shorter than width {w} and no padding rule")


def record_field(cdr: CDR, t: FieldTemplate) -> str:
    """The text of one ``*exp.`` field for ``cdr`` (before width handling)."""
    if t.type in ("*constant",):
        return t.value
    if t.type == "*filler":
        return t.value.ljust(t.width)
    if t.type not in ("*composed", "*variable"):
        raise ExportError(f"field {t.tag}: type {t.type!r} not supported in records")
    out = []
    for part in t.value.split(";") if t.value else []:
        m = _PART.match(part)
        if not m:
            out.append(part)
            continue
        name, conv = m.group(1), m.group(2) or ""
        if name == "Cost":
            decimals = GLOBAL_ROUNDING if t.rounding_decimals is None else t.rounding_decimals
            out.append(format_cost(cdr.cost, decimals, t.cost_shift_digits))
        elif name in ("SetupTime", "AnswerTime"):
            dt = cdr.setup_time if name == "SetupTime" else cdr.answer_time
            out.append(go_format(dt, t.layout) if dt else go_rfc3339(None))
        elif name == "Usage":
            out.append(_convert_duration(cdr.usage_ns, conv, t.tag))
        elif conv:
            raise ExportError(f"field {t.tag}: converter {{{conv}}} only applies to Usage")
        else:
            out.append(_req_value(cdr, name))
    return "".join(out)


def _handler(t: FieldTemplate, stats: ExportStats, export_id: str, now: datetime) -> str:
    m = re.fullmatch(r"([^{}]+)(?:\{([^}]*)\})?", t.value)
    if not m:
        raise ExportError(f"field {t.tag}: bad handler {t.value!r}")
    name, conv = m.group(1), m.group(2) or ""
    usage_tor = {"*cdrs_duration": DEFAULT_TOR, "*sms_usage": "*sms", "*mms_usage": "*mms",
                 "*generic_usage": "*generic", "*data_usage": "*data"}
    if name == "*export_id":
        return export_id
    if name == "*time_now":
        return go_format(now, t.layout)
    if name == "*first_cdr_atime":
        return go_format(stats.first_atime, t.layout)
    if name == "*last_cdr_atime":
        return go_format(stats.last_atime, t.layout)
    if name == "*cdrs_number":
        return str(stats.records)
    if name in usage_tor:
        ns = stats.usage_by_tor.get(usage_tor[name], 0)
        if name != "*cdrs_duration" and not conv:
            return str(ns)
        return _convert_duration(ns, conv, t.tag)
    if name == "*cdrs_cost":
        decimals = GLOBAL_ROUNDING if t.rounding_decimals is None else t.rounding_decimals
        return format_cost(stats.total_cost, decimals, t.cost_shift_digits)
    raise ExportError(f"field {t.tag}: unknown handler {name!r}")


def header_field(t: FieldTemplate, stats: ExportStats, export_id: str, now: datetime) -> str:
    if t.type == "*constant":
        return t.value
    if t.type == "*filler":
        return t.value.ljust(t.width)
    if t.type == "*handler":
        return _handler(t, stats, export_id, now)
    raise ExportError(f"field {t.tag}: type {t.type!r} not supported in header/trailer")


def _line(fields: Sequence[FieldTemplate], value_of: Callable[[FieldTemplate], str]) -> list[str]:
    out = []
    for t in fields:
        v = value_of(t)
        if t.mandatory and v == "":
            raise ExportError(f"field {t.tag}: mandatory and empty")
        out.append(fit_width(v, t))
    return out


def csv_line(values: Sequence[str], sep: str = ",") -> str:
    """One record the way Go's encoding/csv writes it (quotes only when needed, ``\\n``)."""
    out = []
    for v in values:
        needs = v != "" and (
            v == "\\." or sep in v or any(c in v for c in '"\r\n') or v[0] in " \t"
        )
        out.append('"' + v.replace('"', '""') + '"' if needs else v)
    return sep.join(out) + "\n"


def render(
    profile: ExportProfile, cdrs: Sequence[CDR], export_id: str, now: datetime
) -> tuple[str, ExportStats, list[CDR], dict[str, str]]:
    """The file content for ``cdrs``: (text, stats, exported CDRs, failed CGRID → reason)."""
    hdr = [f for f in profile.fields if f.section == "*hdr"]
    exp = [f for f in profile.fields if f.section == "*exp"]
    trl = [f for f in profile.fields if f.section == "*trl"]
    stats = ExportStats()
    rows: list[list[str]] = []
    done: list[CDR] = []
    failed: dict[str, str] = {}
    for cdr in cdrs:
        if not cdr.cgrid:
            continue
        try:
            rows.append(_line(exp, lambda t, c=cdr: record_field(c, t)))
        except ExportError as exc:
            failed[cdr.cgrid] = str(exc)
            continue
        stats.add(cdr)
        done.append(cdr)

    def emit(values: list[str]) -> str:
        if profile.export_format == FILE_FWV:
            return "".join(values) + "\n"
        return csv_line(values, profile.field_separator)

    parts = []
    if hdr:
        parts.append(emit(_line(hdr, lambda t: header_field(t, stats, export_id, now))))
    parts.extend(emit(r) for r in rows)
    if trl:
        parts.append(emit(_line(trl, lambda t: header_field(t, stats, export_id, now))))
    return "".join(parts), stats, done, failed


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_cdrs(
    store: CdrStore,
    profile: ExportProfile = BUILTIN_PROFILES[DEFAULT_PROFILE],
    flt: CdrFilter | None = None,
    *,
    export_path: str | Path | None = None,
    export_id: str | None = None,
    file_name: str | None = None,
    include_exported: bool = False,
    now: datetime | None = None,
) -> ExportResult:
    """Export the CDRs selected by ``flt`` to ``<dir>/cdre_<ExportID>.<csv|fwv>``.

    ExportID defaults to the unix time in seconds; ``file_name`` overrides the whole name.
    Nothing is written (``path`` None) when no CDR was exported or the format is ``dry_run``.
    """
    now = now or datetime.now(UTC)
    export_id = export_id or str(int(time.time()))
    sel = CdrFilter(**{
        **(flt or CdrFilter()).__dict__,
        "not_exported_by": None if include_exported else profile.id,
        # a pending run (debit in flight) would be written at Cost -1 and logged as exported,
        # so its rated row would never be exported: it waits for the next export
        "rating_state": RATED_STATE,
    })
    cdrs = store.get_cdrs(sel)
    text, stats, done, failed = render(profile, cdrs, export_id, now)
    path: Path | None = None
    if done and profile.export_format != DRY_RUN:
        directory = Path(export_path or profile.export_path or default_export_path())
        name = file_name or f"cdre_{export_id}.{EXTENSIONS[profile.export_format]}"
        if "/" in name or name in ("", ".", ".."):
            raise ExportError(f"export file name {name!r} must be a plain file name")
        path = directory / name
        write_atomically(path, text)
        store.record_export(ExportRecord(
            export_id=export_id, profile=profile.id, path=str(path),
            order_ids=[c.order_id for c in done], total_cost=stats.total_cost,
        ))
    return ExportResult(
        path=path,
        export_id=export_id,
        total_records=len(cdrs),
        exported=len(done),
        total_cost=stats.total_cost,
        first_order_id=stats.first_order_id,
        last_order_id=stats.last_order_id,
        exported_cgrids=[c.cgrid for c in done],
        failed=failed,
    )


async def export_periodically(
    store: CdrStore, profile: ExportProfile, interval_s: float, **kwargs: object
) -> None:
    """Export new CDRs every ``interval_s`` seconds until cancelled (each run a new file)."""
    while True:
        await asyncio.to_thread(export_cdrs, store, profile, **kwargs)  # type: ignore[arg-type]
        await asyncio.sleep(interval_s)


_TEMPLATE_KEYS = {f for f in FieldTemplate.__dataclass_fields__}


def profile_from_dict(data: dict[str, object]) -> ExportProfile:
    """A CDRe profile from config (JSON): ``{"id", "export_format", "export_path",
    "field_separator", "fields": [{"tag", "path", "type", "value", "width", ...}]}``; CGRateS's
    JSON names (``rounding_decimals``...) are the field names. Unknown keys are an error."""
    known = {"id", "export_format", "export_path", "field_separator", "fields", "attempts",
             "synchronous"}
    unknown = set(data) - known
    if unknown:
        raise ExportError(f"CDRe profile: unknown keys {sorted(unknown)}")
    fields_data = data.get("fields")
    fields = DEFAULT_FIELDS
    if fields_data is not None:
        if not isinstance(fields_data, list) or not fields_data:
            raise ExportError("CDRe profile: fields must be a non-empty list")
        built = []
        for i, fd in enumerate(fields_data):
            if not isinstance(fd, dict) or set(fd) - _TEMPLATE_KEYS or "path" not in fd:
                raise ExportError(
                    f"CDRe profile field #{i + 1}: needs 'path' and only {sorted(_TEMPLATE_KEYS)}"
                )
            fd = {"tag": str(fd["path"]).split(".", 1)[-1], **fd}
            built.append(FieldTemplate(**fd))
        fields = tuple(built)
    return ExportProfile(
        id=str(data.get("id", DEFAULT_PROFILE)),
        export_format=str(data.get("export_format", FILE_CSV)),
        export_path=str(data.get("export_path", "")),
        field_separator=str(data.get("field_separator", ",")),
        fields=fields,
        attempts=_int(data.get("attempts", 1), "attempts"),
        synchronous=_flag(data.get("synchronous", False), "synchronous"),
    )


def _int(v: object, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ExportError(f"CDRe profile: {name} must be an integer (got {v!r})")
    return v


def _flag(v: object, name: str) -> bool:
    if not isinstance(v, bool):
        raise ExportError(f"CDRe profile: {name} must be true or false (got {v!r})")
    return v
