"""``featurestore init``: a small feature repo that applies and builds a training set at once.

It holds featurestore.yaml, one definitions module, a sample source file and a sample spine,
so ``featurestore apply`` and ``featurestore training-set`` work in the new directory as is.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl

from featurestore._config import CONFIG_FILE
from featurestore.definitions._base import check_identifier
from featurestore.errors import ConfigError, RepoError

__all__ = ["SAMPLE_SERVICE", "SAMPLE_SPINE", "create_repo", "project_name"]

SAMPLE_SERVICE = "starter_v1"
SAMPLE_SPINE = "data/spine.parquet"
SOURCE_FILE = "data/customer_stats.parquet"
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

CONFIG = """\
# Feature repo settings. Relative paths resolve against this directory.
project: {project}
# the registry and other state live here; keep it out of version control
data_dir: .featurestore
"""

DEFINITIONS = '''\
"""Feature definitions of the {project} repo.

Edit them, then run 'featurestore plan' to see what changes and 'featurestore apply' to
record them. Every *.py file in this directory is loaded.
"""

from datetime import timedelta

import polars as pl

from featurestore import (
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)

customer = Entity("customer", join_keys=["customer_id"], description="A customer account.")

customer_stats_source = FileSource(
    name="customer_stats",
    path="{source_file}",
    timestamp_field="updated_at",
    description="Daily order statistics per customer.",
)

customer_stats = FeatureView(
    name="customer_stats",
    entities=[customer],
    source=customer_stats_source,
    ttl=timedelta(days=7),
    owner="data-team",
    description="Order statistics as of the latest daily snapshot.",
    tags={{"domain": "orders"}},
    features=[
        Feature("orders_30d", pl.Int64, ge=0, default=0),
        Feature("avg_order_value", pl.Float64, ge=0.0),
        Feature("segment", pl.String, allowed=("new", "regular", "vip"), default="new"),
    ],
)

order_request = RequestSource("order_request", schema={{"basket_total": pl.Float64}})


@on_demand_feature_view(
    sources=[order_request, customer_stats],
    schema={{"basket_vs_avg": pl.Float64}},
    owner="data-team",
)
def basket_ratio(df: pl.DataFrame) -> list[pl.Expr]:
    """The basket total relative to the customer's average order."""
    return [(pl.col("basket_total") / pl.col("avg_order_value")).alias("basket_vs_avg")]


{service} = FeatureService("{service}", features=[customer_stats, basket_ratio])
'''

GITIGNORE = ".featurestore/\n__pycache__/\n"


def project_name(directory: Path) -> str:
    """A valid project name from a directory name: 'my-repo' -> 'my_repo'."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", directory.resolve().name).strip("_") or "features"
    return f"p_{name}" if name[0].isdigit() else name


def _sample_source() -> pl.DataFrame:
    """Ten daily snapshots of five customers, with a gap that makes one value stale."""
    rows = []
    for day in range(10):
        for cid in range(1, 6):
            if cid == 5 and day > 2:  # customer 5 stops being updated
                continue
            orders = cid * 2 + day // 3
            rows.append(
                {
                    "customer_id": cid,
                    "updated_at": START + dt.timedelta(days=day),
                    "orders_30d": orders,
                    "avg_order_value": round(20.0 + 7.5 * cid + day, 2),
                    "segment": ("new", "regular", "regular", "vip", "new")[cid - 1],
                }
            )
    return pl.DataFrame(rows)


def _sample_spine() -> pl.DataFrame:
    """Orders to build a training set for, one of them for an unknown customer."""
    return pl.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 1, 2, 6],
            "event_timestamp": [
                START + dt.timedelta(days=d, hours=h)
                for d, h in [(1, 9), (2, 12), (3, 8), (4, 18), (12, 10), (9, 20), (6, 7), (5, 5)]
            ],
            "basket_total": [35.0, 80.5, 12.0, 150.0, 60.0, 42.0, 33.3, 19.9],
            "label": [0, 1, 0, 1, 0, 0, 1, 0],
        }
    )


def create_repo(directory: Path, project: str | None = None) -> list[Path]:
    """Write the starter repo into ``directory``; refuses to overwrite any file."""
    project = project or project_name(directory)
    try:
        check_identifier(project, "project")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    files = {
        CONFIG_FILE: CONFIG.format(project=project),
        "definitions.py": DEFINITIONS.format(
            project=project, source_file=SOURCE_FILE, service=SAMPLE_SERVICE
        ),
        ".gitignore": GITIGNORE,
    }
    targets = [directory / name for name in [*files, SOURCE_FILE, SAMPLE_SPINE]]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise RepoError(
            f"cannot create a feature repo in {directory}: {', '.join(existing)} already "
            "exist(s); choose an empty or new directory"
        )
    if directory.exists() and not directory.is_dir():
        raise RepoError(f"cannot create a feature repo in {directory}: it is a file")
    (directory / "data").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    _sample_source().write_parquet(directory / SOURCE_FILE)
    _sample_spine().write_parquet(directory / SAMPLE_SPINE)
    return targets
