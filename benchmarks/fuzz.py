"""Fuzzing with a large budget: the fuzzers of tests/fuzz (definitions, training sets, online
requests, pushes), run for many more examples than the test suite draws, each round with a new
seed, and optionally the schemathesis run of the HTTP API (tests/fuzz/test_openapi.py).

Every call must return or raise a FeatureStoreError subclass; a raw exception is a failure,
printed with the call that raised it and the featurestore function it came from. A failure
found once is not counted again (later rounds skip it and look for others), nor is one
already tracked by an xfail test (``KNOWN_BUGS`` in tests/fuzz/checks.py). At the end, the
known entities must get the same online values and training set as before the fuzzing.

    python benchmarks/fuzz.py                                 # 2000 examples per fuzzer
    python benchmarks/fuzz.py --examples 20000 --seconds 1800 # whichever comes first
    python benchmarks/fuzz.py --only push,online --seconds 60
    python benchmarks/fuzz.py --http --http-examples 500      # also the HTTP API

Exits 1 when a failure was found or stored values changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fuzzers live in the tests' package ``fuzz``

import hypothesis.strategies as st  # noqa: E402
from fuzz.checks import (  # noqa: E402
    KNOWN_BUGS,
    KnownBug,
    RawError,
    check_definition,
    check_online,
    check_push,
    check_training,
    origin,
)
from fuzz.repo import build_repo, snapshot  # noqa: E402
from fuzz.strategies import definitions, online_args, push_args, training_args  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from polars.testing import assert_frame_equal  # noqa: E402

from featurestore import FeatureStore  # noqa: E402

FUZZERS = ("definitions", "training", "online", "push")
ROUND = 500  # examples per hypothesis run: each run has a new seed


@dataclass
class Fuzzer:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], str]
    examples: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _failures(exc: BaseException) -> list[RawError]:
    """The RawErrors in what a hypothesis run raised (one, or a group of several)."""
    if isinstance(exc, RawError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        return [f for e in exc.exceptions for f in _failures(e)]
    return []


def run(fuzzer: Fuzzer, examples: int, deadline: float) -> None:
    """Rounds of ``fuzzer`` until ``examples`` ran or ``deadline`` (a monotonic time) passed;
    each failure is recorded and skipped afterwards."""
    started = time.monotonic()
    round_ = 0
    while fuzzer.examples < examples and time.monotonic() < deadline:
        round_ += 1
        budget = min(ROUND, examples - fuzzer.examples)

        @seed(round_ * 7919 + hash(fuzzer.name) % 1000)
        @settings(
            max_examples=budget,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(value=fuzzer.strategy)
        def body(value: Any) -> None:
            if time.monotonic() >= deadline:
                return
            fuzzer.examples += 1
            fuzzer.outcomes[fuzzer.check(value)] += 1

        before = fuzzer.examples
        try:
            body()
        except Exception as exc:
            found = _failures(exc)
            if not found:  # the fuzzer's own code failed: report it, go on with the next
                fuzzer.failures.append(f"the fuzzer failed: {exc!r}")
                print(f"\n[{fuzzer.name}] THE FUZZER FAILED: {exc!r}", flush=True)
                break
            for failure in found:
                cause = failure.__cause__
                assert cause is not None
                KNOWN_BUGS.append(KnownBug(type(cause), origin(cause), "found by this run"))
                fuzzer.failures.append(str(failure))
                print(f"\n[{fuzzer.name}] FAILURE:\n{failure}", flush=True)
        if fuzzer.examples == before:  # the strategy ran dry or the deadline passed
            break
    fuzzer.seconds += time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per fuzzer")
    parser.add_argument("--seconds", type=float, default=600, help="time for all the fuzzers")
    parser.add_argument("--only", default=",".join(FUZZERS), help="comma-separated fuzzers")
    parser.add_argument("--http", action="store_true", help="also fuzz the HTTP API")
    parser.add_argument("--http-examples", type=int, default=300, help="per HTTP operation")
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name]
    unknown = sorted(set(chosen) - set(FUZZERS))
    if unknown:
        parser.error(f"unknown fuzzer(s) {unknown}; choose among {', '.join(FUZZERS)}")

    with tempfile.TemporaryDirectory(prefix="featurestore-fuzz-") as tmp:
        folder = Path(tmp)
        store = FeatureStore(build_repo(folder / "repo"))
        (spines := folder / "spines").mkdir()
        before = snapshot(store)
        fuzzers = {
            "definitions": Fuzzer("definitions", definitions(), check_definition),
            "training": Fuzzer(
                "training", training_args(), lambda kw: check_training(store, kw, spines)
            ),
            "online": Fuzzer("online", online_args(), lambda kw: check_online(store, kw)),
            "push": Fuzzer("push", push_args(), lambda kw: check_push(store, kw)),
        }
        print(
            f"fuzzing {', '.join(chosen)}: up to {args.examples} examples each, "
            f"{args.seconds:.0f} s in all; tracked raw exceptions skipped: {len(KNOWN_BUGS)}",
            flush=True,
        )
        started = time.monotonic()
        for i, name in enumerate(chosen):
            share = (args.seconds - (time.monotonic() - started)) / (len(chosen) - i)
            run(fuzzers[name], args.examples, time.monotonic() + share)
            f = fuzzers[name]
            print(
                f"{name:<12} {f.examples:>7} examples in {f.seconds:7.1f} s  "
                f"outcomes {dict(sorted(f.outcomes.items()))}  new failures {len(f.failures)}",
                flush=True,
            )
        lost = []
        fresh = FeatureStore(store.repo.root)
        for label, other in (("same store", store), ("fresh store", fresh)):
            values, statuses, training = snapshot(other)
            if (values, statuses) != before[:2]:
                lost.append(f"{label}: online values or statuses of the known entities changed")
            try:
                assert_frame_equal(training, before[2])
            except AssertionError as exc:
                lost.append(f"{label}: the training set of the known entities changed: {exc}")
        fresh.close()
        store.close()

    http_failed = False
    if args.http:
        print(f"HTTP API: schemathesis, {args.http_examples} examples per operation", flush=True)
        env = {**os.environ, "FEATURESTORE_FUZZ_HTTP_EXAMPLES": str(args.http_examples)}
        env.pop("CI", None)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "tests/fuzz/test_openapi.py",
            ],
            cwd=ROOT,
            env=env,
            check=False,
        )
        http_failed = done.returncode != 0

    failures = sum(len(f.failures) for f in fuzzers.values())
    total = sum(f.examples for f in fuzzers.values())
    print(
        f"\n{dt.datetime.now():%Y-%m-%d %H:%M} {total} examples in "
        f"{time.monotonic() - started:.0f} s: {failures} new raw exception(s), "
        f"{'stored values changed: ' + '; '.join(lost) if lost else 'stored values intact'}"
        f"{', HTTP fuzzing FAILED' if http_failed else ''}"
    )
    return 1 if failures or lost or http_failed else 0


if __name__ == "__main__":
    sys.exit(main())
