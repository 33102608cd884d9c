"""Benchmarks: each compares safegrid with a named reference in the same run.

Every result line goes through :func:`bench_line`; when ``SAFEGRID_BENCH_OUT`` names a
file (``./scripts/bench`` sets it to ``BENCHMARKS.md``), the lines are written there at
the end of the run with the machine they ran on.
"""

import datetime as dt
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path

import pytest
from sqlalchemy import text

LINES: list[str] = []
MACHINE: dict[str, str] = {}


def bench_line(line: str) -> None:
    """Print one benchmark line and keep it for BENCHMARKS.md."""
    print(f"\nBENCH {line}")
    LINES.append(line)


def median_time(fn, repeat: int = 3) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def report(name: str, ours: float, reference_name: str, reference: float) -> None:
    """One line: our median, the reference's, and the ratio (> 1: we are faster)."""
    bench_line(f"{name}: safegrid {_fmt(ours)} | {reference_name} {_fmt(reference)} | "
               f"{reference / ours:.1f}x")


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


@pytest.fixture(scope="session", autouse=True)
def machine(db):
    """What the benchmarks run on (kept for BENCHMARKS.md)."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "0")
    with db.connect() as conn:
        postgres = conn.execute(text("SHOW server_version")).scalar_one()
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    libraries = ", ".join(f"{name} {_version(name)}" for name in (
        "shapely", "numpy", "scipy", "geopandas", "esda", "spopt", "pygeoapi", "pointpats",
        "statsmodels"))
    MACHINE.update({
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{int(memory) / 2**20:.1f} GiB",
        "system": platform.platform(),
        "Python": platform.python_version(),
        "PostgreSQL / PostGIS": f"{postgres} / {postgis}",
        "libraries": libraries,
    })


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def pytest_sessionfinish(session, exitstatus):
    """Write the lines and the machine to ``$SAFEGRID_BENCH_OUT`` when it is set."""
    out = os.environ.get("SAFEGRID_BENCH_OUT")
    if not out or not LINES:
        return
    quick = os.environ.get("SAFEGRID_BENCH_QUICK") == "1"
    body = [
        "# Benchmarks",
        "",
        f"Written by `./scripts/bench{' --quick' if quick else ''}` on "
        f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; every line compares "
        "safegrid with a named reference measured in the same run (the ratio: how many "
        "times faster safegrid is). Run it again to refresh this file.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in MACHINE.items()),
        "",
        "## Results",
        "",
        *(f"- {line}" if not line.startswith("  ") else f"  - {line.strip()}"
          for line in LINES),
        "",
        f"Exit status of the run: {int(exitstatus)}.",
        "",
    ]
    Path(out).write_text("\n".join(body), encoding="utf-8")
