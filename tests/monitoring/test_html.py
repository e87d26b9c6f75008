"""The HTML report: escaping, order, one chart per histogram, exact bar heights and no external
resources, checked by parsing the page, then loaded in headless Chromium for console errors."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.errors import ReportError
from featurestore.monitoring._html import render_report
from featurestore.monitoring._report import Report, Verdict

HOSTILE = "<script>alert(1)</script>"
VOID_TAGS = {"meta", "input", "br", "img", "link", "hr", "area", "base", "col", "embed", "wbr"}
# Chromium logs every console message and uncaught exception of the page as
# "[pid:tid:time:INFO:CONSOLE:line] "message", source: url (line)"; older builds wrote
# "CONSOLE(line)". The report page has no script, so any such line is a failure.
CONSOLE_LINE = re.compile(r"^\[[^\]]*\bCONSOLE\b[^\]]*\]\s?(?P<message>.*)$", re.MULTILINE)
INSTALL_HINT = "install it with `apt-get install -y chromium` (the CI script does so when missing)"


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
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder.root


def histogram(labels: list[str], reference: list[Any], current: list[Any]) -> dict[str, Any]:
    return {
        "labels": labels,
        "reference": reference,
        "current": current,
        "reference_label": "reference",
        "current_label": "current",
    }


def shares_from(values: np.ndarray, edges: np.ndarray) -> list[float]:
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
    return root.find_all("article", "fs-card")


def charts(root: Node) -> list[Node]:
    return root.find_all("svg", "fs-chart")


def test_hostile_strings_are_escaped_everywhere() -> None:
    owner = '"><img src=x onerror=alert(2)>'
    label = "</svg><script>alert(3)</script>"
    hostile = feature(
        HOSTILE,
        "flagged",
        owner=owner,
        dtype="<i>dtype</i>",
        reasons=["<i>why</i> & how"],
        stats={"<u>stat</u>": "<em>value</em>"},
        histogram=histogram([label, "b"], [0.5, 0.5], [0.25, 0.75])
        | {"reference_label": "<ref>", "current_label": "</svg>"},
        examples=[{"<k>": "<v>", "user_id": HOSTILE}],
    )
    page = render_report(
        report(
            [hostile],
            title=HOSTILE,
            settings={"<s>": "<script>alert(4)</script>"},
            summary={"<x>": 1},
        )
    )
    assert "<script" not in page
    assert "alert(1)</script>" not in page
    root = parse(page)
    tags = {n.tag for n in root.iter()}
    assert not tags & {"script", "img", "iframe", "object", "embed", "link", "i", "u", "em"}
    assert not [a for n in root.iter() for a in n.attrs if a.startswith("on")]
    # the parsed page gives back exactly the original strings (escaped once, not twice)
    (card,) = cards(root)
    (chart,) = charts(root)
    assert card.attrs["data-ref"] == chart.attrs["data-ref"] == HOSTILE
    assert card.find_all("h2")[0].text() == HOSTILE
    assert root.find_all("title")[0].text() == HOSTILE
    assert owner in card.text()
    assert "<i>why</i> & how" in card.text() and "<i>dtype</i>" in card.text()
    tips = [t.text() for g in chart.find_all("g", "fs-bin") for t in g.find_all("title")]
    assert tips[0] == f"{label}: <ref> 50.0%, </svg> 25.0%"
    example_table = card.find_all("table", "fs-examples")[0]
    assert [th.text() for th in example_table.find_all("th")] == ["<k>", "user_id"]
    assert [td.text() for td in example_table.find_all("td")] == ["<v>", HOSTILE]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
            st.sampled_from([str(v) for v in Verdict]),
            st.booleans(),
        ),
        max_size=7,
    )
)
def test_cards_keep_order_and_each_histogram_gets_one_chart(
    specs: list[tuple[str, str, bool]],
) -> None:
    features = [
        feature(ref, verdict, histogram=numeric_histogram(i, bins=3 + i) if has_chart else None)
        for i, (ref, verdict, has_chart) in enumerate(specs)
    ]
    root = parse(render_report(report(features)))
    assert [c.attrs["data-ref"] for c in cards(root)] == [ref for ref, _, _ in specs]
    assert [c.attrs["data-verdict"] for c in cards(root)] == [v for _, v, _ in specs]
    with_chart = [ref for ref, _, has_chart in specs if has_chart]
    assert [c.attrs["data-ref"] for c in charts(root)] == with_chart
    assert len(root.find_all("p", "fs-nochart")) == len(specs) - len(with_chart)
    for card, (_, _, has_chart) in zip(cards(root), specs, strict=True):
        assert len(charts(card)) == int(has_chart)
    ids = {n.attrs["id"] for n in root.iter() if n.attrs.get("id")}
    for i, chart in enumerate(charts(root)):
        assert len(chart.find_all("g", "fs-bin")) == 3 + [j for j, s in enumerate(specs) if s[2]][i]
        assert chart.attrs["role"] == "img"
        assert set((chart.attrs["aria-labelledby"] or "").split()) <= ids
        assert chart.find_all("title") and chart.find_all("desc")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bar_heights_are_proportional_to_the_shares(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bins = int(rng.integers(2, 40))
    ref = rng.dirichlet(np.ones(bins)).tolist()
    cur = rng.dirichlet(np.ones(bins) * 0.5).tolist()
    cur[0] = None  # a missing share draws no bar
    labels = [f"label {i}" for i in range(bins)]
    root = parse(render_report(report([feature("v:x", histogram=histogram(labels, ref, cur))])))
    (chart,) = charts(root)
    groups = chart.find_all("g", "fs-bin")
    assert len(groups) == bins

    def heights(cls: str) -> list[float | None]:
        rects = [g.find_all("rect", cls) for g in groups]
        return [float(r[0].attrs["height"] or "nan") if r else None for r in rects]

    ref_h, cur_h = heights("fs-bar-ref"), heights("fs-bar-cur")
    assert cur_h[0] is None and all(h is not None for h in ref_h + cur_h[1:])
    scale = max(h for h in ref_h if h is not None) / max(ref)
    assert np.allclose(ref_h, np.asarray(ref) * scale, atol=2e-3)
    assert np.allclose(cur_h[1:], np.asarray(cur[1:]) * scale, atol=2e-3)
    # the y axis reaches the tallest bar, and its top gridline is at most one step above it
    ticks = [
        float(t.text().rstrip("%")) / 100
        for t in chart.find_all("text")
        if re.fullmatch(r"[\d.]+%", t.text())
    ]
    peak = max(ref + [c for c in cur if c is not None])
    step = ticks[1] - ticks[0]
    assert ticks[0] == 0 and ticks[-1] >= peak - 1e-12 and ticks[-1] - peak < step
    tips = [g.find_all("title")[0].text() for g in groups]
    pct = [f"{s:.1%}" if s >= 0.0005 else "<0.1%" for s in (ref[1], cur[1])]
    assert tips[1] == f"label 1: reference {pct[0]}, current {pct[1]}"
    assert tips[0].endswith("current -")
    ref_w = float(groups[1].find_all("rect", "fs-bar-ref")[0].attrs["width"] or 0)
    cur_w = float(groups[1].find_all("rect", "fs-bar-cur")[0].attrs["width"] or 0)
    assert cur_w < ref_w  # the current bar sits inside the reference bar, both visible


def test_statistics_and_examples_are_formatted() -> None:
    stats = {
        "rows": 1234567,
        "psi": 0.2531416,
        "p_value": 1.23456e-40,
        "missing": None,
        "mean": 12345.678,
        "nan": math.nan,
        "drifted": True,
        "zero": 0.0,
        "method": "PSI",
    }
    examples = [{"user_id": 1234567, "served": 1.4999, "offline": 1.5, "note": None}]
    root = parse(render_report(report([feature("v:x", stats=stats, examples=examples)])))
    table = root.find_all("table", "fs-stats")[0]
    names = [th.text() for th in table.find_all("th")]
    values = [td.text() for td in table.find_all("td")]
    assert names == [
        "rows",
        "psi",
        "p value",
        "missing",
        "mean",
        "nan",
        "drifted",
        "zero",
        "method",
    ]
    assert values == [
        "1,234,567",
        "0.2531",
        "1.23e-40",
        "-",
        "12,345.68",
        "NaN",
        "true",
        "0",
        "PSI",
    ]
    example_cells = [td.text() for td in root.find_all("table", "fs-examples")[0].find_all("td")]
    assert example_cells == ["1234567", "1.4999", "1.5", "null"]


def test_page_is_self_contained() -> None:
    features = [feature(f"v:f{i}", histogram=numeric_histogram(i)) for i in range(3)]
    features.append(feature("v:none", histogram=None))
    page = render_report(report(features))
    assert not re.search(r"https?:|//[a-z]|url\(|@import", page, re.IGNORECASE)
    root = parse(page)
    assert not root.find_all("script") and not root.find_all("link")
    assert not [n for n in root.iter() if "src" in n.attrs]
    ids = {n.attrs["id"] for n in root.iter() if n.attrs.get("id")}
    hrefs = [n.attrs["href"] or "" for n in root.iter() if "href" in n.attrs]
    assert hrefs and all(h.startswith("#") and h[1:] in ids for h in hrefs)
    (csp,) = [m for m in root.find_all("meta") if m.attrs.get("http-equiv")]
    assert (csp.attrs["content"] or "").startswith("default-src 'none'")


def test_summary_tiles_and_verdict_enums() -> None:
    features = [feature("v:a", Verdict.FLAGGED), feature("v:b", Verdict.OK)]
    data = report(features)
    data["summary"] |= {"current_rows": 3000}
    root = parse(render_report(data))
    tiles = root.find_all("li", "fs-tile")
    assert [t.find_all("span")[0].text() for t in tiles] == [
        "Features",
        "Flagged",
        "Warn",
        "Insufficient data",
        "OK",
        "Current rows",
    ]
    assert [t.find_all("b")[0].text() for t in tiles] == ["2", "1", "0", "0", "1", "3,000"]
    assert "fs-v-flagged" in (tiles[1].attrs["class"] or "")
    assert [c.attrs["data-verdict"] for c in cards(root)] == ["flagged", "ok"]
    labels = [n.text() for n in root.find_all("label")]
    assert labels == ["All (2)", "Not OK (1)", "Flagged (1)"]


def test_empty_report_renders() -> None:
    root = parse(render_report(report([])))
    assert not cards(root) and not charts(root)
    assert "no features" in root.text()


def test_bad_report_dicts_get_clear_errors() -> None:
    broken = feature("v:x")
    del broken["histogram"]
    with pytest.raises(ReportError, match=r"feature #0 as HTML: missing key\(s\) histogram"):
        render_report(report([broken]))
    ragged = feature("v:y", histogram=histogram(["a", "b"], [0.5, 0.5], [1.0]))
    with pytest.raises(ReportError, match=r"'v:y'.*different lengths"):
        render_report(report([ragged]))
    negative = feature("v:z", histogram=histogram(["a", "b"], [0.5, -0.1], [0.5, "x"]))
    with pytest.raises(ReportError, match=r"'v:z'.*not numbers >= 0: \[-0.1, 'x'\]"):
        render_report(report([negative]))
    with pytest.raises(ReportError, match=r"missing key.*features"):
        render_report({"title": "x", "generated_at": "", "summary": {}, "settings": {}})


def test_report_write_html_writes_the_rendered_page(tmp_path: Path) -> None:
    data = report([feature("v:x", "warn")])

    class Fixed(Report):
        def to_dict(self) -> dict[str, Any]:
            return data

    target = Fixed().write_html(tmp_path / "out" / "drift.html")
    assert target.read_text(encoding="utf-8") == render_report(data)


# --- headless Chromium -------------------------------------------------------------------------


def chromium_binary() -> str:
    """The Chromium binary; missing it fails the test so CI cannot silently skip the check."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail(f"no chromium or chromium-browser binary on PATH; {INSTALL_HINT}")
    return binary


def load_in_chromium(page: Path, profile_dir: Path) -> tuple[Node, list[str]]:
    """The DOM after the page loaded and its console messages (errors, exceptions, CSP)."""
    command = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile_dir}",
        "--dump-dom",
        page.as_uri(),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish loading {page} within 60 s")
    assert done.returncode == 0 and done.stdout.strip(), f"Chromium failed:\n{done.stderr[-3000:]}"
    return parse(done.stdout), [m["message"] for m in CONSOLE_LINE.finditer(done.stderr)]


def test_report_loads_in_chromium_without_console_errors(tmp_path: Path) -> None:
    many_bins = histogram(
        [f"category-{i}" for i in range(40)], [1 / 40] * 40, [0.05] * 20 + [0.0] * 20
    )
    features = [
        feature("txn:amount", "flagged", histogram=numeric_histogram(1, shift=2.0)),
        feature(HOSTILE, "warn", owner='"><img src=x onerror=alert(1)>'),
        feature("user:country", "warn", kind="categorical", histogram=many_bins),
        feature("user:vip", "insufficient_data", kind="boolean", histogram=None),
        feature("user:age", "ok", examples=[{"user_id": 1, "served": 2.5, "offline": None}]),
    ]
    page = tmp_path / "report.html"
    page.write_text(render_report(report(features)), encoding="utf-8")
    dom, console = load_in_chromium(page, tmp_path / "profile")
    assert console == [], f"the report logged to the browser console: {console}"
    assert [c.attrs["data-ref"] for c in cards(dom)] == [f["ref"] for f in features]
    expected = [f["ref"] for f in features if f["histogram"] is not None]
    assert [c.attrs["data-ref"] for c in charts(dom)] == expected
    assert len(charts(dom)[2].find_all("g", "fs-bin")) == 40
    assert not dom.find_all("img") and not dom.find_all("script")


def test_console_check_catches_errors_exceptions_and_blocked_loads(tmp_path: Path) -> None:
    """The console check is not blind: a broken page yields one line per problem."""
    page = render_report(report([feature("v:x")])).replace(
        "default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';"
    )
    broken = page.replace(
        "</main>",
        '<script>console.error("deliberate failure")</script>'
        "<script>undefinedFunction()</script>"
        '<img src="https://example.invalid/x.png" alt="">'
        "</main>",
    )
    path = tmp_path / "broken.html"
    path.write_text(broken, encoding="utf-8")
    dom, console = load_in_chromium(path, tmp_path / "profile")
    assert len(charts(dom)) == 1
    assert any("deliberate failure" in m for m in console), console
    assert any("ReferenceError" in m and "undefinedFunction" in m for m in console), console
    assert any("example.invalid" in m and "Content Security Policy" in m for m in console), console
