"""The HTML report loaded in headless Chromium: no console errors, exceptions or blocked loads,
and a check that a broken page does report them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from featurestore.monitoring._html import render_report
from tests.monitoring.html_pages import (
    HOSTILE,
    Node,
    cards,
    charts,
    feature,
    histogram,
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
    done = subprocess.run(command, capture_output=True, text=True, check=False)
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
