"""Report dicts and pages for the HTML tests: hand-made features, reports and histograms, real
skew and drift reports over a long window, and a small parser that turns a page into a tree of
nodes to query."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl

from featurestore import FeatureStore
from featurestore.monitoring._report import Verdict
from tests.monitoring.skew_repo import BASE, LATE, T0, T1, T2, profile_rows, serve, write

HOSTILE = "<script>alert(1)</script>"
VOID_TAGS = {"meta", "input", "br", "img", "link", "hr", "area", "base", "col", "embed", "wbr"}


@dataclass
class Node:
    """An element of the parsed page (tag names and attribute names are lower-cased)."""

    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    def iter(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        return [
            n
            for n in self.iter()
            if n.tag == tag and (cls is None or cls in (n.attrs.get("class") or "").split())
        ]

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _TreeBuilder(HTMLParser):
    """Builds the tree of :class:`Node` from the parser's events."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID_TAGS:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> Node:
    """The page as a tree of nodes under a ``#root`` node."""
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder.root


def histogram(labels: list[str], reference: list[Any], current: list[Any]) -> dict[str, Any]:
    """A histogram entry with the sides labelled reference and current."""
    return {
        "labels": labels,
        "reference": reference,
        "current": current,
        "reference_label": "reference",
        "current_label": "current",
    }


def shares_from(values: np.ndarray, edges: np.ndarray) -> list[float]:
    """Each bin's share of ``values`` over bins ``(e[i-1], e[i]]``."""
    counts = np.bincount(np.searchsorted(edges, values), minlength=len(edges) + 1)
    shares: list[float] = (counts / counts.sum()).tolist()
    return shares


def numeric_histogram(seed: int, bins: int = 10, shift: float = 0.5) -> dict[str, Any]:
    """Shares of reference and shifted current normal samples over reference quantile bins."""
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(0, 1, 4000), rng.normal(shift, 1.2, 3000)
    edges = np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])
    labels = [f"bin {i}" for i in range(bins)]
    return histogram(labels, shares_from(ref, edges), shares_from(cur, edges))


def feature(ref: str, verdict: str = "ok", **overrides: Any) -> dict[str, Any]:
    """A feature entry of a report, any key overridden."""
    base: dict[str, Any] = {
        "ref": ref,
        "owner": "risk-team",
        "dtype": "Float64",
        "kind": "numeric",
        "verdict": verdict,
        "reasons": [f"reason for {ref}"],
        "stats": {"psi": 0.01, "rows": 100},
        "histogram": numeric_histogram(len(ref)),
        "examples": [],
    }
    return base | overrides


def report(features: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A drift report dict over ``features``, any key overridden."""
    verdicts = [str(f["verdict"]) for f in features]
    base: dict[str, Any] = {
        "kind": "drift",
        "title": "Drift report",
        "generated_at": "2024-05-01T12:00:00+00:00",
        "summary": {"features": len(features), **{v: verdicts.count(v) for v in map(str, Verdict)}},
        "settings": {"psi": "population stability index over reference deciles"},
        "features": features,
    }
    return base | overrides


def cards(root: Node) -> list[Node]:
    """The page's feature cards, in order."""
    return root.find_all("article", "fs-card")


def charts(root: Node) -> list[Node]:
    """The page's charts, in order."""
    return root.find_all("svg", "fs-chart")


# a window of months: requests from February to April, the source's rows from January
WINDOW = (dt.datetime(2024, 1, 15, tzinfo=dt.UTC), dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
LAST_REQUEST = dt.datetime(2024, 4, 20)


def long_window_reports(open_store: Callable[..., FeatureStore]) -> dict[str, dict[str, Any]]:
    """A real skew report and a real drift report over months, as dicts: newer profile rows
    for users 0..99 arrive after the materialization, so their float scores mismatch; the
    drift compares the profile source of January with the serving log of the window."""
    store = open_store(n=1200)
    store.materialize(end=T0)
    newer = profile_rows([*range(100)], LATE, bump=1)
    write(store, "data/profile.parquet", pl.concat([profile_rows(range(1200), BASE), newer]))
    for i, at in enumerate((T1, T2, LAST_REQUEST)):
        serve(store, range(400 * i, 400 * (i + 1)), at)
    skew = store.skew_report(*WINDOW).to_dict()
    drift = store.drift_report(
        "source:profile:2023-12-01..2024-01-10", "log:2024-01-15..2024-05-01"
    ).to_dict()
    return {"skew": skew, "drift": drift}


def crowded_report() -> dict[str, Any]:
    """A report that tries to be wide: long unbroken references, reasons and values, a dozen
    example columns, 40 long category labels, a temporal chart binned in epoch microseconds,
    long window labels and a setting with no space in it."""
    week_us = 7 * 86_400_000_000
    edges = [1_735_862_400_000_000 + k * week_us for k in range(10)]
    weeks = histogram([f"({a}, {b}]" for a, b in pairwise(edges)], [1 / 9] * 9, [1 / 9] * 9)
    weeks |= {
        "reference_label": "serving log [2025-01-03T00:00:00.123456Z, 2025-03-28T12:00Z)",
        "current_label": "source of a_long_view_name [2025-03-28T00:00Z, 2025-04-28T00:00Z)",
    }
    examples = [
        {
            "request_id": f"request-{i}-" + "0" * 30,
            "request_time": "2025-02-19T08:29:32.462612+00:00",
            "merchant_id": "m" * 90,
            "note": "a long sentence " * 20,
            "served": 3123.2400000000002 + i,
            "offline": 0.1 + 0.2 + i,
            "status": "PRESENT",
            **{f"extra_column_{k}": 1 / 3 + k for k in range(5)},
        }
        for i in range(5)
    ]
    categories = [f"category-{i}-" + "y" * 30 for i in range(40)]
    features = [
        feature(
            "a_view_with_a_long_name:" + "f" * 150,
            "flagged",
            reasons=["r" * 400, "served a row of 2025-02-19T08:29:32+00:00"],
            stats={"pairs": "'a' -> 'b' x3; " * 30, "counts": {"PRESENT": 3}, "none": []},
            examples=examples,
        ),
        feature("t:when", "warn", kind="temporal", histogram=weeks),
        feature(
            "u:country", kind="categorical", histogram=histogram(categories, *[[1 / 40] * 40] * 2)
        ),
    ]
    data = report(features, title="Drift of " + weeks["current_label"])
    data["summary"] |= {"not_replayed": [], "reference": weeks["reference_label"]}
    data["settings"] |= {"long": "z" * 500}
    return data
