"""The HTML report loaded in headless Chromium: no console errors, exceptions or blocked loads;
at 1400 px wide (screenshot kept in the test's directory) nothing overflows sideways and the
rendered text has no raw repr, raw timestamp or over-long float; and checks that broken pages
do fail each of these."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from featurestore import FeatureStore
from featurestore.monitoring._html import render_report
from tests.monitoring.html_pages import (
    HOSTILE,
    Node,
    cards,
    charts,
    crowded_report,
    feature,
    histogram,
    long_window_reports,
    numeric_histogram,
    parse,
    report,
)

# Chromium logs every console message and uncaught exception of the page as
# "[pid:tid:time:INFO:CONSOLE:line] "message", source: url (line)"; older builds wrote
# "CONSOLE(line)". The report page has no script, so any such line is a failure.
CONSOLE_LINE = re.compile(r"^\[[^\]]*\bCONSOLE\b[^\]]*\]\s?(?P<message>.*)$", re.MULTILINE)
INSTALL_HINT = "install it with `apt-get install -y chromium` (the CI script does so when missing)"


def chromium_binary() -> str:
    """The Chromium binary; missing it fails the test so CI cannot silently skip the check."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail(f"no chromium or chromium-browser binary on PATH; {INSTALL_HINT}")
    return binary


def chromium(page: Path, profile_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``page`` with ``args`` (what to output); a failure fails the test."""
    command = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile_dir}",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"Chromium failed:\n{done.stderr[-3000:]}"
    return done


def load_in_chromium(page: Path, profile_dir: Path) -> tuple[Node, list[str]]:
    """The DOM after the page loaded and its console messages (errors, exceptions, CSP)."""
    done = chromium(page, profile_dir, "--dump-dom")
    assert done.stdout.strip(), f"Chromium printed no DOM:\n{done.stderr[-3000:]}"
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


WIDTH = 1400
# Run in a copy of the page (whose CSP otherwise forbids any script): open every fold, then
# note what reaches past the viewport, overflows its own box or leaves its chart, and the text
# a reader sees (the page, the charts' labels and the window title; tooltips are left out).
MEASURE = """<script>
for (const fold of document.querySelectorAll("details")) fold.open = true;
const width = window.innerWidth, wide = [];
const name = (el) => `${el.tagName} ${el.getAttribute("class")} ${el.textContent.slice(0, 40)}`;
for (const el of document.querySelectorAll("main *")) {
  const box = el.getBoundingClientRect();
  if (box.width && (box.left < -0.5 || box.right > width + 0.5)) wide.push("past: " + name(el));
  if (!(el instanceof SVGElement) && el.scrollWidth > el.clientWidth + 1)
    wide.push("wider than its box: " + name(el) + " " + el.scrollWidth + " > " + el.clientWidth);
}
for (const svg of document.querySelectorAll("svg.fs-chart")) {
  const frame = svg.getBoundingClientRect();
  for (const label of svg.querySelectorAll("text")) {
    const box = label.getBoundingClientRect();
    if (box.left < frame.left - 0.5 || box.right > frame.right + 0.5 ||
        box.top < frame.top - 0.5 || box.bottom > frame.bottom + 0.5)
      wide.push("outside its chart: " + label.textContent);
  }
}
const labels = [...document.querySelectorAll("svg text")].map((t) => t.textContent);
document.body.dataset.layout = JSON.stringify({
  viewport: width, page: document.documentElement.scrollWidth, wide: wide,
  text: [document.title, document.body.innerText, ...labels].join("\\n")});
</script>"""
RAW = {
    "a Python repr": re.compile(r"\[\]|\{\}|\bNone\b|(?i:\bnan\b)"),
    "an ISO timestamp": re.compile(
        r"\d{4}-\d{2}-\d{2}T\d|\d:\d{2}(?::\d{2})?(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})"
    ),
    "epoch microseconds": re.compile(r"(?<![\d,.])\d{16}(?![\d,])"),
}
FLOAT = re.compile(r"(?<![\w.])\d[\d,]*\.\d+(?:e[+-]?\d+)?")


def significant_digits(number: str) -> int:
    """The significant digits of a number as the page shows it ("0.001250" has four)."""
    return len(number.split("e")[0].replace(",", "").replace(".", "").lstrip("0"))


def reading_problems(text: str, digits: int = 7) -> list[str]:
    """What in the rendered text reads as a program's output rather than a report's."""
    found = [f"{what}: {m.group(0)!r}" for what, rx in RAW.items() for m in rx.finditer(text)]
    found += [f"a long float: {f!r}" for f in FLOAT.findall(text) if significant_digits(f) > digits]
    return found


def render_at_1400(page: str, directory: Path, name: str) -> dict[str, Any]:
    """Screenshot ``page`` at 1400 px wide (kept as NAME.png in ``directory``) and measure a
    copy of it there: the page's width, what overflows, and the text a reader sees."""
    path, probe = directory / f"{name}.html", directory / f"{name}-measured.html"
    path.write_text(page, encoding="utf-8")
    size = f"--window-size={WIDTH},2400"
    shot = directory / f"{name}.png"
    chromium(path, directory / "profile", size, f"--screenshot={shot}")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">I", png[16:20])[0] == WIDTH
    scripted = page.replace(
        "default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';"
    )
    probe.write_text(scripted.replace("</body>", f"{MEASURE}</body>"), encoding="utf-8")
    dom = parse(chromium(probe, directory / "profile", size, "--dump-dom").stdout)
    (body,) = dom.find_all("body")
    layout: dict[str, Any] = json.loads(body.attrs["data-layout"] or "{}")
    return layout | {"dom": dom}


def assert_fits_and_reads_well(layout: dict[str, Any]) -> None:
    assert layout["viewport"] == WIDTH
    assert layout["page"] <= WIDTH, f"the page is {layout['page']} px wide"
    assert layout["wide"] == [], layout["wide"]
    assert reading_problems(layout["text"]) == []


def test_real_reports_over_months_fit_1400_px_and_read_well(
    open_store: Callable[..., FeatureStore], tmp_path: Path
) -> None:
    reports = long_window_reports(open_store)
    for kind, data in reports.items():
        layout = render_at_1400(render_report(data), tmp_path, kind)
        assert_fits_and_reads_well(layout)
        (h1,) = layout["dom"].find_all("h1")
        assert "2024-01-15 → 2024-05-01" in h1.text()
    assert reports["skew"]["summary"]["not_replayed"] == []
    skew = render_at_1400(render_report(reports["skew"]), tmp_path, "skew")
    tiles = [t.text() for t in skew["dom"].find_all("li", "fs-tile")]
    assert "0Not replayed" in tiles
    cut = [td for td in skew["dom"].find_all("td") if td.attrs.get("title")]
    floats = [td for td in cut if "." in td.text() and float(td.attrs["title"] or 0)]
    assert floats and all(
        float(td.text()) == pytest.approx(float(td.attrs["title"] or 0)) for td in floats
    )
    drift = render_at_1400(render_report(reports["drift"]), tmp_path, "drift")
    legends = [t.text() for t in drift["dom"].find_all("g", "fs-legend")[0].find_all("text")]
    assert legends == [
        "source of profile 2023-12-01 → 2024-01-10",
        "serving log 2024-01-15 → 2024-05-01",
    ]


def test_a_crowded_report_fits_1400_px(tmp_path: Path) -> None:
    layout = render_at_1400(render_report(crowded_report()), tmp_path, "crowded")
    assert_fits_and_reads_well(layout)
    ticks = [t.text() for t in charts(layout["dom"])[1].find_all("text")]
    assert "(2025-01-03, 2025-01-10]" in ticks


def test_the_layout_and_text_checks_catch_overflow_and_raw_values(tmp_path: Path) -> None:
    """The checks are not blind: a page made wide, or showing raw values, fails them."""
    page = render_report(report([feature("v:x")]))
    wide = page.replace("</main>", '<p style="white-space: nowrap">' + "w " * 900 + "</p></main>")
    layout = render_at_1400(wide, tmp_path, "wide")
    assert layout["page"] > WIDTH and layout["wide"]
    raw = "[] None nan 2025-01-03T00:00:00+00:00 10:00Z 1735862400000000 3123.2400000000002"
    layout = render_at_1400(page.replace("</main>", f"<p>{raw}</p></main>"), tmp_path, "raw")
    found = reading_problems(layout["text"])
    assert [f for f in found if f.startswith("a Python repr")] == [
        f"a Python repr: {r!r}" for r in ("[]", "None", "nan")
    ]
    for what in ("an ISO timestamp: '2025-01-03T0", "an ISO timestamp: '0:00Z'"):
        assert any(f.startswith(what) for f in found), found
    assert "epoch microseconds: '1735862400000000'" in found
    assert "a long float: '3123.2400000000002'" in found
