"""Benchmark: peak memory of materializing a large view, in parts and in one batch.

Writes a source of N entities x 10 features (the repo of ``benchmarks/online.py``), then, each
in a fresh process, materializes a full snapshot of it into the embedded online store with the
default part size (``materialization.part_rows``) and with the whole view as one part, and
reports seconds, rows/s and the process's peak resident memory (absolute, above its level just
before the call, and its anonymous part: without the store's memory-mapped file pages), sampled
every 10 ms.

    python benchmarks/materialize_memory.py --entities 10000000
    python benchmarks/materialize_memory.py --entities 1000000 --backend sqlite --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from memory import PeakRss
from online import DATA_ROOT, END, write_repo

ONE_PART = 10**12  # a part size no source reaches: the whole view in one batch


class PeakAnon(PeakRss):
    """Also the peak of anonymous memory (RssAnon): the heaps, without the file pages of a
    memory-mapped store, which the kernel can drop at any time."""

    def _run(self) -> None:
        self.anon = 0
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.anon = max(self.anon, _rss_anon())


def _rss_anon() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def probe(entities: int, backend: str, part_rows: int | None) -> dict[str, Any]:
    """Materialize the repo once in this process; seconds, rows and peak RSS."""
    from featurestore import FeatureStore

    root = DATA_ROOT / f"memory-{backend}"
    config = root / "featurestore.yaml"
    text = config.read_text().split("materialization:")[0]
    if part_rows is not None:
        text += f"materialization:\n  part_rows: {part_rows}\n"
    config.write_text(text)
    for old in (root / ".featurestore").glob("online.*"):  # into an empty store, as at first
        old.unlink()
    store = FeatureStore(root)
    store.apply()
    with PeakAnon() as rss:
        started = time.perf_counter()
        [result] = store.materialize(end=END, views=["entity_stats"])
        seconds = time.perf_counter() - started
    store.close()
    return {
        "rows": result.rows,
        "seconds": seconds,
        "rows_per_s": result.rows / seconds,
        "peak_rss_mib": rss.peak / 2**20,
        "peak_above_start_mib": rss.delta_mb,
        "peak_anon_mib": rss.anon / 2**20,
    }


def in_child(entities: int, backend: str, mode: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--entities", str(entities)]
    cmd += ["--backend", backend, "--probe", mode]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"probe {mode} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=10_000_000)
    parser.add_argument("--backend", default="lmdb", choices=["lmdb", "sqlite"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--probe", choices=["parts", "one"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        part_rows = None if args.probe == "parts" else ONE_PART
        print(json.dumps(probe(args.entities, args.backend, part_rows)))
        return
    started = time.perf_counter()
    write_repo(DATA_ROOT / f"memory-{args.backend}", args.backend, args.entities, "unused:")
    generated = time.perf_counter() - started
    results = {mode: in_child(args.entities, args.backend, mode) for mode in ("parts", "one")}
    if args.json:
        print(json.dumps({"entities": args.entities, "backend": args.backend, **results}))
        return
    print(
        f"materialize {args.entities:,} entities x 10 features into {args.backend} "
        f"(source written in {generated:.1f} s)"
    )
    for mode, r in results.items():
        label = "default parts" if mode == "parts" else "one batch"
        print(
            f"  {label:<14} {r['seconds']:7.1f} s  {r['rows_per_s']:>10,.0f} rows/s  "
            f"peak RSS {r['peak_rss_mib']:>7,.0f} MiB ({r['peak_above_start_mib']:,.0f} above "
            f"the start; anonymous {r['peak_anon_mib']:,.0f} MiB)"
        )


if __name__ == "__main__":
    main()
