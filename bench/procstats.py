"""CPU seconds and memory of the suite's service processes, read from /proc.

The services are the ``python -m services.<name>`` children of the supervisor (`cgr up`). CPU is
utime + stime (/proc/<pid>/stat), memory VmRSS now and VmHWM (the kernel's peak RSS) from
/proc/<pid>/status. A service restarted during the run shows up as a new pid; both are kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # the command name (field 2) may hold spaces/parentheses: split after its closing ")"
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB."""
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1])
    return rss, hwm


def service_children(supervisor_pid: int) -> dict[int, str]:
    """pid -> service name of the supervisor's ``services.<name>`` children."""
    out: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid != supervisor_pid:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue  # gone meanwhile
        for i, a in enumerate(argv):
            if a.startswith(b"services."):
                out[int(entry.name)] = a.decode().removeprefix("services.")
            elif a == b"bench.echo" and i + 1 < len(argv):  # the echo mode's do-nothing servers
                out[int(entry.name)] = argv[i + 1].decode()
    return out


def postgres_backends(dbname: str) -> list[int]:
    """Postgres server processes serving database ``dbname`` (their title names it)."""
    out = []
    needle = f" {dbname} ".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if title.startswith(b"postgres:") and needle in title:
            out.append(int(entry.name))
    return out


@dataclass
class ProcSample:
    name: str
    cpu_start: float
    cpu_last: float = 0.0
    rss_kb_max: int = 0
    hwm_kb: int = 0


@dataclass
class ProcWatch:
    """Samples every service process; ``report()`` gives CPU used since ``start()`` and peaks."""

    supervisor_pid: int | None
    pg_dbname: str | None = None  # also count the Postgres backends of the run's database
    procs: dict[int, ProcSample] = field(default_factory=dict)
    rss_timeline: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def start(self) -> None:
        self.procs.clear()
        self.sample(0.0)

    def sample(self, t: float) -> None:
        rss_now: dict[str, int] = {}
        found = service_children(self.supervisor_pid) if self.supervisor_pid else {}
        if self.pg_dbname:
            found.update(dict.fromkeys(postgres_backends(self.pg_dbname), "postgres"))
        for pid, name in found.items():
            try:
                cpu = cpu_seconds(pid)
                rss, hwm = memory_kb(pid)
            except (OSError, ValueError):
                continue
            p = self.procs.get(pid)
            if p is None:
                # a pid first seen after start() is a restart: all its CPU belongs to the run
                p = self.procs[pid] = ProcSample(name, cpu if t == 0.0 else 0.0)
            p.cpu_last = cpu
            p.rss_kb_max = max(p.rss_kb_max, rss)
            p.hwm_kb = max(p.hwm_kb, hwm)
            rss_now[name] = rss_now.get(name, 0) + rss
        self.rss_timeline.append((round(t, 1), rss_now))

    def cpu_total(self, exclude: str = "postgres") -> float:
        """Service CPU seconds since ``start()`` as of the last sample (all but ``exclude``)."""
        return sum(p.cpu_last - p.cpu_start for p in self.procs.values() if p.name != exclude)

    def report(self) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        for p in sorted(self.procs.values(), key=lambda s: s.name):
            row = out.setdefault(p.name, {"cpu_seconds": 0.0, "peak_rss_mb": 0.0, "pids": 0})
            row["cpu_seconds"] = round(float(row["cpu_seconds"]) + p.cpu_last - p.cpu_start, 2)
            row["peak_rss_mb"] = max(float(row["peak_rss_mb"]), round(max(p.hwm_kb, p.rss_kb_max) / 1024, 1))
            row["pids"] = int(row["pids"]) + 1
        return out


def self_cpu() -> float:
    """The generator's own CPU seconds so far (it shares the machine with the suite)."""
    return cpu_seconds(os.getpid())


def self_peak_rss_mb() -> float:
    return round(memory_kb(os.getpid())[1] / 1024, 1)
