"""The HTML report: escaping, order, one chart per histogram, exact bar heights, number forms,
summary tiles and no external resources, checked by parsing the page."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.errors import ReportError
from featurestore.monitoring._html import render_report
from featurestore.monitoring._report import Report, Verdict
from tests.monitoring.html_pages import (
    HOSTILE,
    cards,
    charts,
    feature,
    histogram,
    numeric_histogram,
    parse,
    report,
)


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
    assert np.allclose(np.asarray(ref_h, float), np.asarray(ref) * scale, atol=2e-3)
    assert np.allclose(np.asarray(cur_h[1:], float), np.asarray(cur[1:]) * scale, atol=2e-3)
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
    pct = [f"{s:.1%}" if s >= 0.0005 else "<0.1%" for s in (ref[0], ref[1], cur[1])]
    assert tips[1] == f"label 1: reference {pct[1]}, current {pct[2]}"
    assert tips[0] == f"label 0: reference {pct[0]}, current -"
    ref_w = float(groups[1].find_all("rect", "fs-bar-ref")[0].attrs["width"] or 0)
    cur_w = float(groups[1].find_all("rect", "fs-bar-cur")[0].attrs["width"] or 0)
    assert cur_w < ref_w  # the current bar sits inside the reference bar, both visible


def test_statistics_and_examples_are_formatted() -> None:
    """Statistics take the short number form of the CLI; example values a few significant
    digits (more only to tell two different values apart), times to the second, long values
    cut, each with its exact form as a tooltip; nothing shows as a Python repr."""
    stats: dict[str, Any] = {
        "rows": 1234567,
        "psi": 0.2531416,
        "p_value": 1.23456e-40,
        "missing": None,
        "mean": 12345.678,
        "small_mean": 1234.5678,
        "nan": math.nan,
        "inf": math.inf,
        "drifted": True,
        "zero": 0.0,
        "method": "PSI",
        "counts": {"PRESENT": 3},
        "none": [],
        "first": "2025-01-03 00:00:00+00:00",
    }
    examples = [
        {"user_id": 1234567, "served": 1.4999, "offline": 1.5, "note": None, "ok": False},
        {
            "user_id": 7,
            "served": 3123.2400000000002,
            "offline": 3123.24,
            "note": "n" * 100,
            "ok": True,
            "request_time": "2025-02-19T08:29:32.462612+00:00",
        },
        {"user_id": 8, "served": 0.1 + 0.2, "offline": 2 / 3, "note": [], "ok": True},
    ]
    root = parse(render_report(report([feature("v:x", stats=stats, examples=examples)])))
    table = root.find_all("table", "fs-stats")[0]
    names = [th.text() for th in table.find_all("th")]
    values = [td.text() for td in table.find_all("td")]
    assert names == [key.replace("_", " ") for key in stats]
    assert values == [
        "1,234,567",
        "0.2531",
        "1.235e-40",
        "-",
        "12,346",
        "1,235",
        "n/a",
        "inf",
        "true",
        "0",
        "PSI",
        "PRESENT: 3",
        "none",
        "2025-01-03 00:00 UTC",
    ]
    aligned = [td.attrs.get("class") for td in table.find_all("td")]  # numbers to the right
    assert aligned == ["fs-num"] * 3 + [None] + ["fs-num"] * 4 + [None, "fs-num"] + [None] * 4
    rows = [tr.find_all("td") for tr in root.find_all("table", "fs-examples")[0].find_all("tr")]
    assert [[td.text() for td in row] for row in rows if row] == [
        ["1234567", "1.4999", "1.5", "null", "false", "null"],
        ["7", "3123.2400000000002", "3123.24", "n" * 39 + "…", "true", "2025-02-19 08:29:32"],
        ["8", "0.3", "0.6666667", "(empty)", "true", "null"],
    ]
    tips = [[td.attrs.get("title") for td in row] for row in rows if row]
    assert tips[1] == [None, None, None, "n" * 100, None, "2025-02-19T08:29:32.462612+00:00"]
    assert tips[2] == [None, "0.30000000000000004", "0.6666666666666666", "[]", None, None]


def test_summary_lists_and_texts_read_as_words() -> None:
    """A list in the summary is a tile of its length naming its items (an empty one is 0, never
    "[]"); text entries such as the sides of a drift report are a line under the tiles."""
    data = report([feature("v:a")])
    data["summary"] |= {
        "not_replayed": [],
        "gone": ["v:b", "v:c"],
        "reference": "serving log [2025-01-03T00:00Z, 2025-03-28T00:00Z)",
    }
    root = parse(render_report(data))
    tiles = {t.find_all("span")[0].text(): t for t in root.find_all("li", "fs-tile")}
    assert tiles["Not replayed"].find_all("b")[0].text() == "0"
    assert not tiles["Not replayed"].find_all("code")
    assert [c.text() for c in tiles["Gone"].find_all("code")] == ["v:b", "v:c"]
    assert tiles["Gone"].find_all("b")[0].text() == "2"
    (facts,) = root.find_all("dl", "fs-facts")
    assert [d.text() for d in facts.find_all("dt")] == ["Reference"]
    assert [d.text() for d in facts.find_all("dd")] == ["serving log 2025-01-03 → 2025-03-28"]
    assert "[]" not in root.text()


def test_titles_legends_and_settings_show_dates_not_timestamps() -> None:
    """A window of weeks shows as dates everywhere a reader sees it; the exact times stay in
    the attributes of the generated time."""
    ref = "serving log [2025-01-03T00:00:00.123456Z, 2025-03-28T12:00Z)"
    cur = "source of view [2025-03-28T00:00Z, 2025-03-29T06:00Z)"  # shorter than two days
    data = report(
        [
            feature(
                "v:x",
                histogram=numeric_histogram(1) | {"reference_label": ref, "current_label": cur},
            )
        ],
        title=f"Drift of {cur} against {ref}",
        generated_at="2025-03-29T07:07:39.855782+00:00",
    )
    data["settings"] |= {"window": "2024-12-20T00:00:00+00:00 to 2025-03-05T00:00:00+00:00"}
    root = parse(render_report(data))
    ref_shown = "serving log 2025-01-03 → 2025-03-28"
    cur_shown = "source of view 2025-03-28 00:00 → 2025-03-29 06:00 UTC"
    assert root.find_all("h1")[0].text() == f"Drift of {cur_shown} against {ref_shown}"
    assert root.find_all("title")[0].text() == f"Drift of {cur_shown} against {ref_shown}"
    (generated,) = root.find_all("time")
    assert generated.text() == "2025-03-29 07:07:39 UTC"
    assert generated.attrs["datetime"] == "2025-03-29T07:07:39.855782+00:00"
    (chart,) = charts(root)
    legend = [t.text() for t in chart.find_all("g", "fs-legend")[0].find_all("text")]
    assert legend == [ref_shown, cur_shown]
    assert f"{ref_shown} against {cur_shown}" in chart.find_all("title")[0].text()
    settings = root.find_all("details", "fs-settings")[0].text()
    assert "2024-12-20 → 2025-03-05" in settings
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d", root.text())


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
    assert csp.attrs["content"] == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


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
    assert [t.attrs["class"] for t in tiles] == [
        "fs-tile ",
        "fs-tile fs-v-flagged",
        "fs-tile fs-v-warn",
        "fs-tile fs-v-insufficient_data",
        "fs-tile fs-v-ok",
        "fs-tile ",
    ]
    assert [c.attrs["data-verdict"] for c in cards(root)] == ["flagged", "ok"]
    labels = [n.text() for n in root.find_all("label")]
    assert labels == ["All (2)", "Not OK (1)", "Flagged (1)"]


def test_empty_report_renders() -> None:
    root = parse(render_report(report([])))
    assert not cards(root) and not charts(root)
    assert [p.text() for p in root.find_all("p", "fs-empty")] == ["This report has no features."]


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
