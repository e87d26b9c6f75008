"""The shape shared by the drift and skew reports: one verdict and a row of statistics per
feature, worst first, in a dict that the terminal table, JSON and HTML outputs all read.

``to_dict()`` returns::

    {"kind": "drift" | "skew", "title": str, "generated_at": ISO-8601 str,
     "summary": {"features": int, "flagged": int, "warn": int, "ok": int,
                 "insufficient_data": int, ...},        # plus report-specific entries
     "settings": {name: str},                           # the rules and defaults applied
     "features": [                                      # sorted by severity
        {"ref": "view:feature", "owner": str | None, "dtype": str,
         "kind": "numeric" | "categorical" | "boolean" | "temporal",
         "verdict": "flagged" | "warn" | "insufficient_data" | "ok",
         "reasons": [str],                              # why, in words; likely causes
         "stats": {name: float | int | str | None},     # in display order
         "histogram": None | {"labels": [str], "reference": [float], "current": [float],
                              "reference_label": str, "current_label": str},  # shares
         "examples": [dict]},                           # e.g. mismatching keys (skew)
        ...]}
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["Report", "Verdict"]


class Verdict(enum.StrEnum):
    """A feature's outcome, from most to least severe."""

    FLAGGED = "flagged"
    WARN = "warn"
    INSUFFICIENT_DATA = "insufficient_data"
    OK = "ok"

    @property
    def rank(self) -> int:
        return list(Verdict).index(self)


class Report:
    """Base of DriftReport and SkewReport: subclasses implement :meth:`to_dict`."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

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
        return json.dumps(self.to_dict(), default=str, indent=2)

    def to_html(self) -> str:
        """A single self-contained HTML page (no network needed to open it)."""
        from featurestore.monitoring._html import render_report

        return render_report(self.to_dict())

    def write_html(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_html(), encoding="utf-8")
        return target
