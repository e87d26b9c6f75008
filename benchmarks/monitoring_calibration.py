"""Benchmark: the calibrated thresholds of continuous monitoring against their two targets.

Four features (a normal one; a skewed one, 0 with probability 0.3 else geometric(0.05), so with a
point mass and ties, 5% null; a categorical one of 15 categories with shares 29% down to 0.2%,
2% null; a boolean one, true rate 0.2, 1% null). For each of 20 seeds: a reference of
``--reference-rows`` rows (1,000,000 by default) profiled with ``profile_frame``, then windows of
1k, 10k, 100k and 1M rows drawn from the same distribution and profiled at it
(``profile_frame(frame, reference=...)``: real rows, several windows side by side as columns of
one frame), and each window's statistics (``window_statistics``) compared with their calibrated
thresholds (``calibrated_threshold``).

- false alerts: the share of feature-windows on unchanged data with any statistic above its
  threshold; target <= 1% at every size;
- detection: per seed and size, one window of the normal feature shifted by 0.1 reference
  standard deviations, caught when KS or PSI is above its threshold; target >= 95% of the 20
  seeds at 100k rows and more. One window of the categorical feature with 3 points of share
  moved from the commonest category to the second is reported beside it.

    python benchmarks/monitoring_calibration.py            # a few minutes on 2 cores
    python benchmarks/monitoring_calibration.py --seeds 3 --reference-rows 200000
    python benchmarks/monitoring_calibration.py --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import Counter
from typing import Any

import numpy as np
import polars as pl
from machine import load_average, machine, versions

from featurestore._profiles import FeatureProfile, profile_frame
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._monitor._calibration import calibrated_threshold
from featurestore.monitoring._monitor._statistics import STATISTICS, window_statistics

FEATURES = ("normal", "skewed", "category", "flag")
CATEGORIES = np.array([f"c{i:02d}" for i in range(15)])
SHARES = 0.5 ** (np.arange(15) / 2) / np.sum(0.5 ** (np.arange(15) / 2))
NULLS = {"normal": 0.0, "skewed": 0.05, "category": 0.02, "flag": 0.01}
WINDOWS = {1_000: 50, 10_000: 25, 100_000: 10, 1_000_000: 5}  # rows: windows per seed
SHIFT, MOVED = 0.1, 0.03  # the normal feature's mean shift (std), the category share moved
TARGETS = {"false_alert_rate_max": 0.01, "detection_rate_min": 0.95, "detection_rows_min": 100_000}


def feature(
    rng: np.random.Generator, name: str, rows: int, shift: float = 0.0, moved: float = 0.0
) -> pl.Series:
    """``rows`` values of feature ``name`` with its share of nulls."""
    values: np.ndarray
    if name == "normal":
        values = rng.normal(shift, 1.0, rows)
    elif name == "skewed":
        values = np.where(rng.random(rows) < 0.3, 0.0, rng.geometric(0.05, rows))
    elif name == "category":
        shares = SHARES + np.r_[-moved, moved, np.zeros(SHARES.size - 2)]
        values = CATEGORIES[rng.choice(CATEGORIES.size, rows, p=shares)]
    else:
        values = rng.random(rows) < 0.2
    return pl.Series(name, values).scatter(np.flatnonzero(rng.random(rows) < NULLS[name]), None)


def windows(
    rng: np.random.Generator,
    reference: dict[str, FeatureProfile],
    rows: int,
    copies: int,
    names: tuple[str, ...] = FEATURES,
    **change: float,
) -> list[dict[str, FeatureProfile]]:
    """Profiles of ``copies`` windows of ``rows`` real rows, each taken at ``reference``."""
    frame = pl.DataFrame(
        [feature(rng, f, rows, **change).alias(f"{f}_{i}") for i in range(copies) for f in names]
    )
    at = {f"{f}_{i}": reference[f] for f in names for i in range(copies)}
    profiles = profile_frame(frame, reference=at)
    del frame
    return [{f: profiles[f"{f}_{i}"] for f in names} for i in range(copies)]


class Tally:
    """Flagged statistics and the seconds spent in the calibrated thresholds."""

    def __init__(self, cfg: DriftConfig) -> None:
        self.cfg = cfg
        self.threshold_seconds = 0.0
        self.threshold_calls = 0

    def flagged(self, reference: FeatureProfile, window: FeatureProfile) -> list[str]:
        """The statistics of ``window`` above their calibrated threshold."""
        values = window_statistics(reference, window, self.cfg)
        out = []
        for name in STATISTICS:
            started = time.perf_counter()
            limit = calibrated_threshold(name, reference, window.count, self.cfg)
            self.threshold_seconds += time.perf_counter() - started
            self.threshold_calls += 1
            value = values[name]
            if value is not None and limit is not None and value > limit:
                out.append(name)
        return out


def run_seed(seed: int, reference_rows: int, tally: Tally, results: dict[str, Any]) -> None:
    """One seed: a reference, unchanged windows of every size, and the shifted windows."""
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame([feature(rng, f, reference_rows) for f in FEATURES])
    reference = profile_frame(frame)
    del frame
    for rows, copies in WINDOWS.items():
        out = results["false_alerts"][rows]
        for window in windows(rng, reference, rows, copies):
            for f in FEATURES:
                names = tally.flagged(reference[f], window[f])
                out["feature_windows"] += 1
                out["flagged"] += bool(names)
                out["by_feature"][f] += bool(names)
                out["by_statistic"].update(names)
        for key, name, change, deciding in (
            ("mean_shift", "normal", {"shift": SHIFT}, {"ks_d", "psi"}),
            ("category_shift", "category", {"moved": MOVED}, {"linf", "psi"}),
        ):
            (window,) = windows(rng, reference, rows, 1, (name,), **change)
            caught = bool(set(tally.flagged(reference[name], window[name])) & deciding)
            results[key][rows]["seeds"] += 1
            results[key][rows]["caught"] += caught


def summarize(results: dict[str, Any]) -> None:
    """Add the rates and whether each target is met."""
    for out in results["false_alerts"].values():
        out["rate"] = out["flagged"] / out["feature_windows"]
        out["by_statistic"] = dict(out["by_statistic"])
        out["by_feature"] = dict(out["by_feature"])
    for key in ("mean_shift", "category_shift"):
        for out in results[key].values():
            out["rate"] = out["caught"] / out["seeds"]
    results["targets_met"] = {
        "false_alerts": all(
            o["rate"] <= TARGETS["false_alert_rate_max"] for o in results["false_alerts"].values()
        ),
        "detection": all(
            o["rate"] >= TARGETS["detection_rate_min"]
            for rows, o in results["mean_shift"].items()
            if rows >= TARGETS["detection_rows_min"]
        ),
    }


def table(results: dict[str, Any]) -> str:
    """The figures as text."""
    lines = [
        f"{results['seeds']} seeds, references of {results['reference_rows']:,} rows, "
        f"quantile {results['calibration_quantile']}",
        "",
        "false alerts on unchanged data (any statistic above its calibrated threshold):",
        f"{'rows/window':>12} {'feature-windows':>16} {'flagged':>8} {'rate':>7}  by statistic",
    ]
    for rows, o in results["false_alerts"].items():
        rows = int(rows)  # a string once read back from JSON
        by = ", ".join(f"{k} {v}" for k, v in sorted(o["by_statistic"].items())) or "-"
        lines.append(
            f"{rows:>12,} {o['feature_windows']:>16,} {o['flagged']:>8} {o['rate']:>7.2%}  {by}"
        )
    lines += [
        "",
        f"detection, one window per seed: normal mean +{SHIFT} std (KS or PSI), "
        f"category {MOVED:.0%} of share moved (L-inf or PSI):",
        f"{'rows/window':>12} {'mean shift':>12} {'category':>10}",
    ]
    for key, o in results["mean_shift"].items():
        c, rows = results["category_shift"][key], int(key)
        lines.append(
            f"{rows:>12,} {o['caught']:>4}/{o['seeds']:<2} {o['rate']:>4.0%} "
            f"{c['caught']:>3}/{c['seeds']:<2} {c['rate']:>4.0%}"
        )
    met = results["targets_met"]
    lines += [
        "",
        f"targets: false alerts <= 1% at every size: {'met' if met['false_alerts'] else 'MISSED'};"
        f" detection >= 95% at >= 100k rows: {'met' if met['detection'] else 'MISSED'}",
        f"calibrated_threshold: {results['threshold_calls']:,} calls, "
        f"{results['threshold_ms_per_call']:.3f} ms each on average (first calls included); "
        f"{results['seconds']:.0f} s in all",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    cfg = DriftConfig()
    tally = Tally(cfg)
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "versions": versions(),
        "seeds": args.seeds,
        "reference_rows": args.reference_rows,
        "windows_per_seed": WINDOWS,
        "calibration_quantile": cfg.calibration_quantile,
        "targets": TARGETS,
        "false_alerts": {
            rows: {
                "feature_windows": 0,
                "flagged": 0,
                "by_feature": Counter(),
                "by_statistic": Counter(),
            }
            for rows in WINDOWS
        },
        "mean_shift": {rows: {"seeds": 0, "caught": 0} for rows in WINDOWS},
        "category_shift": {rows: {"seeds": 0, "caught": 0} for rows in WINDOWS},
    }
    started = time.perf_counter()
    for seed in range(args.seeds):
        run_seed(seed, args.reference_rows, tally, results)
        if not args.json:
            print(
                f"seed {seed + 1}/{args.seeds}: {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
    results["seconds"] = time.perf_counter() - started
    results["threshold_calls"] = tally.threshold_calls
    results["threshold_ms_per_call"] = (
        1000 * tally.threshold_seconds / max(tally.threshold_calls, 1)
    )
    results["load_average"] = load_average()
    summarize(results)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0 if all(results["targets_met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
