"""Shared fixtures: feature repos written into a temporary directory from small parts.

:func:`write_repo` writes featurestore.yaml, a definitions module and the source data; the
module is assembled by :func:`definitions` from parts such as :func:`view` and :func:`source`
(each test suite declares only its own views). ``make_repo`` writes the default repo (see
:data:`DEFINITIONS`: an entity, a file source over a Parquet file, a view with a plain, an
expression and a bounded feature, a request source, an on-demand view and a feature service);
every part can be replaced.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

PROJECT = "test_project"

# what every definitions module of the tests imports
IMPORTS = """\
from datetime import timedelta

import polars as pl

from featurestore import (
    Count,
    CountDistinct,
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
    Last,
    Max,
    Mean,
    Min,
    PushSource,
    RequestSource,
    StdDev,
    Sum,
    on_demand_feature_view,
)
"""
USER = 'user = Entity("user", join_keys=["user_id"])'
MERCHANT = 'merchant = Entity("merchant", join_keys=["merchant_id"])'
# a feature computed by an expression, as several test repos declare it
TENURE_DAYS = """
Feature(
    "tenure_days",
    pl.Int64,
    expr=(pl.col("updated_at") - pl.col("signup_at")).dt.total_days(),
)
"""


def definitions(*parts: str, doc: str = "Definitions of a test repo.") -> str:
    """A definitions module: ``doc``, the common imports, then each part (dedented), one blank
    line apart."""
    blocks = [f'"""{doc}"""\n', IMPORTS, *(textwrap.dedent(p).strip() + "\n" for p in parts)]
    return "\n".join(blocks)


def source(name: str, path: str, timestamp: str = "ts", created: str | None = None) -> str:
    """A ``FileSource(...)`` expression."""
    fields = f'name="{name}", path="{path}", timestamp_field="{timestamp}"'
    if created is not None:
        fields += f', created_timestamp_field="{created}"'
    return f"FileSource({fields})"


def view(
    name: str,
    source: str,
    *,
    entities: str = "user",
    features: Sequence[str] = (),
    aggregations: Sequence[str] = (),
    **fields: str,
) -> str:
    """``name = FeatureView(...)`` over ``source`` (an expression or a variable) keyed by
    ``entities`` (variables); ``features``, ``aggregations`` and ``fields`` (ttl, owner, ...)
    are expressions, each feature or aggregation on its own lines. The owner is "tests" unless
    given."""
    lines = [f'name="{name}"', f"entities=[{entities}]", f"source={source}"]
    lines += [f"{k}={v}" for k, v in {"owner": '"tests"', **fields}.items()]
    for key, items in (("features", features), ("aggregations", aggregations)):
        if items:
            listed = "".join(f"{textwrap.dedent(i).strip()},\n" for i in items)
            lines.append(f"{key}=[\n{textwrap.indent(listed, '    ')}]")
    body = "".join(textwrap.indent(f"{line},\n", " " * 4) for line in lines)
    return f"{name} = FeatureView(\n{body})"


TXN_RISK = """
@on_demand_feature_view(
    sources=[txn_request, user_profile], schema={"amount_per_age": pl.Float64}
)
def txn_risk(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") / pl.col("age")).cast(pl.Float64).alias("amount_per_age"))


risk_model = FeatureService("risk_model", features=[user_profile, "txn_risk:amount_per_age"])
"""

DEFINITIONS = definitions(
    USER,
    f"users_source = {source('users', 'data/users.parquet', 'updated_at')}",
    view(
        "user_profile",
        "users_source",
        ttl="timedelta(days=30)",
        owner='"risk-team"',
        description='"Profile of a user."',
        tags='{"domain": "risk"}',
        features=[
            'Feature("country", pl.String, default="unknown")',
            'Feature("age", pl.Int64, ge=0, le=130)',
            TENURE_DAYS,
        ],
    ),
    'txn_request = RequestSource("txn_request", schema={"amount": pl.Float64})',
    TXN_RISK,
    doc="Definitions of the test repo.",
)


def users_frame() -> pl.DataFrame:
    """The rows of the ``users`` source: user 3's age breaks the bounds, user 4 has no row."""
    t = dt.datetime
    return pl.DataFrame(
        {
            "user_id": [1, 1, 2, 3],
            "updated_at": [t(2024, 1, 1), t(2024, 2, 1), t(2024, 1, 15), t(2024, 1, 10)],
            "signup_at": [t(2023, 1, 1), t(2023, 1, 1), t(2020, 1, 1), t(2023, 12, 31)],
            "country": ["FR", "FR", "US", None],
            "age": [30, 31, 45, 200],
        },
        schema_overrides={"updated_at": pl.Datetime("us"), "signup_at": pl.Datetime("us")},
    )


def spine_frame() -> pl.DataFrame:
    """Entity rows to build a training set for, with the request column of ``txn_risk``."""
    t = dt.datetime
    return pl.DataFrame(
        {
            "user_id": [1, 1, 2, 3, 4, 1],
            "event_timestamp": [
                t(2024, 1, 15),
                t(2024, 2, 10),
                t(2024, 1, 20),
                t(2024, 1, 11),
                t(2024, 1, 20),
                t(2024, 6, 1),
            ],
            "amount": [60.0, 62.0, 90.0, 10.0, 5.0, 1.0],
        },
        schema_overrides={"event_timestamp": pl.Datetime("us")},
    )


def rows_frame(schema: dict[str, pl.DataType], rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """Rows as a frame with a fixed schema (absent fields are null)."""
    return pl.DataFrame([[r.get(c) for r in rows] for c in schema], schema=schema, orient="col")


def write_repo(
    root: Path,
    definitions: str | None = DEFINITIONS,
    *,
    config: str | None = None,
    project: str = PROJECT,
    data: dict[str, pl.DataFrame] | None = None,
    files: dict[str, str] | None = None,
) -> Path:
    """Write a feature repo into ``root`` and return ``root``.

    ``definitions`` becomes definitions.py (None: no such module); ``config`` replaces the
    whole featurestore.yaml (None: ``project: PROJECT``); ``data`` maps paths relative to the
    repo to frames written as Parquet, or as CSV for a ``.csv`` path (default:
    data/users.parquet); ``files`` adds or replaces text files (e.g. more modules).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "featurestore.yaml").write_text(
        config if config is not None else f"project: {project}\n"
    )
    if definitions is not None:
        (root / "definitions.py").write_text(textwrap.dedent(definitions).lstrip())
    for rel, frame in (data if data is not None else {"data/users.parquet": users_frame()}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".csv":
            frame.write_csv(path)
        else:
            frame.write_parquet(path)
    for rel, text in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``make_repo(name="repo", **write_repo_kwargs)`` writes tmp_path/name."""

    def make(name: str = "repo", definitions: str | None = DEFINITIONS, **kwargs: Any) -> Path:
        return write_repo(tmp_path / name, definitions, **kwargs)

    return make


@pytest.fixture
def repo_dir(make_repo: Callable[..., Path]) -> Path:
    """The default test repo, not yet applied."""
    return make_repo()


@pytest.fixture
def store(repo_dir: Path) -> Any:
    """A FeatureStore over the default test repo, already applied."""
    from featurestore import FeatureStore

    fs = FeatureStore(repo_dir)
    fs.apply()
    yield fs
    fs.close()


@pytest.fixture
def spine() -> pl.DataFrame:
    """The default spine (see :func:`spine_frame`)."""
    return spine_frame()
