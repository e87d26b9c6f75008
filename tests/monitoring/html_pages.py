"""Report dicts and pages for the HTML tests: hand-made features, reports and histograms, and a
small parser that turns a page into a tree of nodes to query."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import numpy as np

from featurestore.monitoring._report import Verdict

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
    return (counts / counts.sum()).tolist()


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
