"""Helpers the bench scripts share: cached input files, process memory, tables, JSON figures.

Memory figures come from ``/proc/PID/status`` (Linux): ``VmRSS`` is the resident set now and
``VmHWM`` its high-water mark (the peak) over the process's life. Both are reported in MiB.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from make_csv import write_csv_atomically

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / ".data"  # git-ignored
MIB = 2**20


def cached_csv(rows: int, seed: int = 0) -> Path:
    """The generated CSV of ``rows`` rows, made once and kept under bench/.data/."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"mixed-{rows}-seed{seed}.csv"
    if not path.exists():
        print(f"generating {path.relative_to(REPO)} ...", file=sys.stderr, flush=True)
        write_csv_atomically(rows, path, seed)
    return path


def cached_wide_csv(rows: int, seed: int = 0) -> Path:
    """The generated wide CSV (timestamps, unicode, quoted text) of ``rows`` rows, made once."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"wide-{rows}-seed{seed}.csv"
    if not path.exists():
        print(f"generating {path.relative_to(REPO)} ...", file=sys.stderr, flush=True)
        write_csv_atomically(rows, path, seed, wide=True)
    return path


def serving_pids(parent: int) -> list[int]:
    """The processes that answer a server's requests: its ``server.py worker`` children
    (WORKERS above 1), or the server process itself."""
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as f:
            children = f.read().split()
    except OSError:
        children = []
    found = []
    for child in children:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"server.py\0worker" in f.read():
                    found.append(int(child))
        except OSError:
            continue
    return found or [parent]


def proc_status_mib(pid: int | str | list[int] = "self") -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB; of several, the largest of each (memory is a
    limit per process)."""
    if isinstance(pid, list):
        each = [proc_status_mib(p) for p in pid]
        return {name: max(f[name] for f in each) for name in ("VmRSS", "VmHWM")}
    figures = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(value.split()[0]) / 1024  # the kernel reports kB
    return figures


def ratio(value: float, baseline: float) -> float | None:
    return value / baseline if baseline else None


def fmt(value: Any, digits: int = 2) -> str:
    """A table cell: floats to ``digits`` places, big ints with separators, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """Print rows under headers, the first column left-aligned and the rest right-aligned."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = (v.rjust(w) for v, w in zip(values[1:], widths[1:]))
        return "  ".join([first, *rest]).rstrip()

    if title:
        print(f"\n{title}")
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in cells:
        print(line(row))


def write_json(path: Path | None, figures: dict[str, Any]) -> None:
    """Write the figures to ``path`` (if one was given) as indented JSON."""
    if path is None:
        return
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfigures written to {path}")


def machine() -> dict[str, Any]:
    """Context for the figures: Python, CPUs, and the load average when the bench started."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1m": os.getloadavg()[0],
    }


def print_machine(context: dict[str, Any]) -> None:
    """One line of context; a load average above the CPU count means noisy timings."""
    busy = context["load_average_1m"] > context["cpus"]
    print(
        f"Python {context['python']}, {context['cpus']} CPUs, load average "
        f"{context['load_average_1m']:.2f} at start"
        + (" (busy machine: timings are noisy)" if busy else "")
    )
