"""What a benchmark records beside its figures (the machine, the library versions and the load
average, so that a figure in RESULTS.md can be read against where and when it was measured),
and the DuckDB connection its hand-written reference runs on."""

from __future__ import annotations

import os
import platform
from typing import Any

import duckdb
import polars as pl
import psutil


def machine() -> dict[str, Any]:
    """Cores, memory, platform and Python of this machine."""
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def versions() -> dict[str, str]:
    """Versions of the engines the figures depend on."""
    return {"duckdb": duckdb.__version__, "polars": pl.__version__}


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: another job on the machine shows up here."""
    return [round(x, 2) for x in os.getloadavg()]


def reference_connection(threads: int | None = None) -> tuple[duckdb.DuckDBPyConnection, int]:
    """A DuckDB connection for the hand-written reference, in UTC like the library's, on
    ``threads`` threads (DuckDB's default when None), and the thread count it runs on."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con, int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
