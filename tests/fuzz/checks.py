"""What the fuzzers check: a call into the Python API either returns or raises a
``FeatureStoreError`` subclass; any other exception is a :class:`RawError` naming the call and
where the exception came from.

Raw exceptions already reported and tracked by an ``xfail(strict=True)`` test are listed in
``KNOWN_BUGS``: the fuzzers count them without failing, so they keep looking for new ones; a
fixed bug turns its xfail test into an unexpected pass, which fails until it is removed here
and there.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from featurestore import FeatureStore, FeatureStoreError

from .strategies import Call, SpineFile, describe, evaluate, first_that_works

__all__ = [
    "KNOWN_BUGS",
    "KnownBug",
    "RawError",
    "check_definition",
    "check_online",
    "check_push",
    "check_training",
    "origin",
]

PACKAGE = Path(__import__("featurestore").__file__).resolve().parent


class RawError(AssertionError):
    """A call into featurestore raised an exception that is no FeatureStoreError."""


@dataclass(frozen=True)
class KnownBug:
    """A raw exception already reported: its type and the featurestore function it leaves
    (``"offline/engine.py:read_spine"``), with the xfail test that tracks it."""

    exc_type: type[BaseException]
    where: str
    test: str

    def matches(self, exc: BaseException) -> bool:
        return isinstance(exc, self.exc_type) and origin(exc) == self.where


_TESTS = "tests/fuzz/test_fuzz_regressions.py::"

# reported raw exceptions of code other than the fuzzers', each pinned by an xfail test
KNOWN_BUGS: list[KnownBug] = []  # none open: each one found so far is fixed


def origin(exc: BaseException) -> str:
    """The innermost featurestore frame the exception went through, as ``path:function``
    relative to the package (``"?"`` when it never entered featurestore)."""
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(PACKAGE):
            where = f"{path.relative_to(PACKAGE).as_posix()}:{frame.name}"
    return where


def guarded(call: Callable[[], Any], shown: str, strict: bool = False) -> str:
    """Run ``call``: "ok", "error" (a FeatureStoreError), "misuse" (a TypeError of Python's own
    argument binding, before featurestore runs), "known" (a known raw exception); RawError for
    any other exception, known or not with ``strict``."""
    try:
        call()
    except FeatureStoreError:
        return "error"
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a Rust panic in Polars is a BaseException
        if isinstance(exc, TypeError) and origin(exc) == "?":
            return "misuse"  # Python refused the call itself (a missing or unknown argument)
        if not strict and any(bug.matches(exc) for bug in KNOWN_BUGS):
            return "known"
        detail = "".join(traceback.format_exception(exc, limit=-6))
        raise RawError(
            f"{type(exc).__name__} from {origin(exc)} (not a FeatureStoreError) for\n"
            f"  {shown}\n{detail}"
        ) from exc
    return "ok"


def check_definition(call: Call, strict: bool = False) -> str:
    """Make a definition (and the definitions its arguments are made of)."""
    return guarded(lambda: evaluate(call), repr(call), strict)


def _write_spine(spine: SpineFile, folder: Path) -> Path:
    path = folder / f"spine-{uuid.uuid4().hex[:8]}.{'csv' if spine.kind == 'csv' else 'parquet'}"
    if spine.kind == "missing":
        return path
    if spine.kind == "directory":
        return folder

    def write(frame: pl.DataFrame) -> None:
        frame.write_csv(path) if spine.kind == "csv" else frame.write_parquet(path)

    frame = spine.frame()
    first_that_works(
        lambda: write(frame),
        # Object or nested columns have no file form: write them as text
        lambda: write(frame.select(pl.all().map_elements(repr, return_dtype=pl.String))),
        lambda: write(pl.DataFrame({"user_id": [1]})),  # names a file cannot hold
    )
    return path


def check_training(
    store: FeatureStore, kwargs: dict[str, Any], folder: Path, strict: bool = False
) -> str:
    """``store.get_training_set(**kwargs)``, its spine first written to a file in ``folder``
    when it is a :class:`SpineFile`."""
    kwargs = dict(kwargs)
    shown = ", ".join(f"{k}={describe(v)}" for k, v in kwargs.items())
    if isinstance(kwargs.get("spine"), SpineFile):
        kwargs["spine"] = _write_spine(kwargs["spine"], folder)
    return guarded(lambda: store.get_training_set(**kwargs).to_polars(), shown, strict)


def check_online(store: FeatureStore, kwargs: dict[str, Any], strict: bool = False) -> str:
    """``store.get_online_features(**kwargs)``."""
    shown = ", ".join(f"{k}={describe(v)}" for k, v in kwargs.items())
    return guarded(lambda: store.get_online_features(**kwargs), shown, strict)


def check_push(store: FeatureStore, kwargs: dict[str, Any], strict: bool = False) -> str:
    """``store.push(**kwargs)``."""
    shown = ", ".join(f"{k}={describe(v)}" for k, v in kwargs.items())
    return guarded(lambda: store.push(**kwargs), shown, strict)
