"""The shape shared by the drift, skew and parity reports: one verdict and a row of statistics per
feature, worst first, in a dict that the terminal table, JSON and HTML outputs all read.

``to_dict()`` returns::

    {"kind": "drift" | "skew" | "parity", "title": str, "generated_at": ISO-8601 str,
     "summary": {"features": int, "flagged": int, "warn": int, "ok": int,
                 "insufficient_data": int, ...},        # plus report-specific entries
     "settings": {name: str},                           # the rules and defaults applied
     "features": [                                      # sorted by severity
        {"ref": "view:feature", "owner": str | None, "dtype": str,
         "kind": "numeric" | "categorical" | "boolean" | "temporal",
         ...                                            # report-specific entries (parity)
         "verdict": "flagged" | "warn" | "insufficient_data" | "ok",
         "reasons": [str],                              # why, in words; likely causes
         "stats": {name: float | int | str | None},     # in display order
         "histogram": None | {"labels": [str], "reference": [float], "current": [float],
                              "reference_label": str, "current_label": str},  # shares
         "examples": [dict]},                           # e.g. mismatching keys (skew)
        ...]}
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

__all__ = ["Finding", "Report", "Verdict"]

SUMMARY_VERDICTS = ("flagged", "warn", "ok", "insufficient_data")  # the summary's order


class Verdict(enum.StrEnum):
    """A feature's outcome, from most to least severe."""

    FLAGGED = "flagged"
    WARN = "warn"
    INSUFFICIENT_DATA = "insufficient_data"
    OK = "ok"

    @property
    def rank(self) -> int:
        return list(Verdict).index(self)


class Finding:
    """Base of one feature's outcome (drift, skew or parity): subclasses are dataclasses with
    these attributes and give their statistics; :meth:`to_dict` is the feature's entry."""

    ref: str
    owner: str | None
    dtype: str
    kind: str
    verdict: Verdict
    reasons: list[str]
    histogram: dict[str, Any] | None
    examples: list[dict[str, Any]]
    ENTRY_EXTRAS: ClassVar[tuple[str, ...]] = ()  # more attributes in the entry, after "kind"

    def statistics(self) -> dict[str, Any]:
        """The statistics, in display order."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """This feature's entry in :meth:`Report.to_dict`."""
        return {
            "ref": self.ref,
            "owner": self.owner,
            "dtype": self.dtype,
            "kind": self.kind,
            **{name: getattr(self, name) for name in self.ENTRY_EXTRAS},
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "stats": self.statistics(),
            "histogram": self.histogram,
            "examples": list(self.examples),
        }


class Report:
    """Base of the reports: a subclass either gives its findings, title, summary entries and
    settings, or overrides :meth:`to_dict` whole."""

    KIND: ClassVar[str] = ""
    generated_at: dt.datetime

    def findings(self) -> Sequence[Finding]:
        """Each feature's outcome, worst first."""
        raise NotImplementedError

    def title(self) -> str:
        """The report's heading."""
        raise NotImplementedError

    def summary_extras(self) -> dict[str, Any]:
        """The summary's entries after the verdict counts."""
        return {}

    def settings_text(self) -> dict[str, str]:
        """Every rule and default applied, in words."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The report as the dict documented in this module."""
        findings = self.findings()
        verdicts = [str(f.verdict) for f in findings]
        return {
            "kind": self.KIND,
            "title": self.title(),
            "generated_at": self.generated_at.isoformat(),
            "summary": {
                "features": len(findings),
                **{v: verdicts.count(v) for v in SUMMARY_VERDICTS},
                **self.summary_extras(),
            },
            "settings": self.settings_text(),
            "features": [f.to_dict() for f in findings],
        }

    @property
    def flagged(self) -> list[str]:
        """References of the flagged features."""
        return [f["ref"] for f in self.to_dict()["features"] if f["verdict"] == Verdict.FLAGGED]

    def to_polars(self) -> pl.DataFrame:
        """One row per feature: ref, owner, verdict, reasons, then every statistic."""
        rows = [
            {
                "ref": f["ref"],
                "owner": f["owner"],
                "verdict": str(f["verdict"]),
                "reasons": "; ".join(f["reasons"]),
                **{
                    k: (v if not isinstance(v, list | dict) else json.dumps(v, default=str))
                    for k, v in f["stats"].items()
                },
            }
            for f in self.to_dict()["features"]
        ]
        return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()

    def to_json(self) -> str:
        """The dict of :meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), default=str, indent=2)

    def to_html(self) -> str:
        """A single self-contained HTML page (no network needed to open it)."""
        from featurestore.monitoring._html import render_report

        return render_report(self.to_dict())

    def write_html(self, path: str | Path) -> Path:
        """Write :meth:`to_html` to ``path`` (creating its directory) and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_html(), encoding="utf-8")
        return target
