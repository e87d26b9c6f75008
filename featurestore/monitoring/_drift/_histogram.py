"""A drift histogram: the reference's and the current side's shares per bin or bucket, and the
labels of numeric bins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from featurestore.monitoring._drift._grading import Sides

__all__ = ["bin_labels", "histogram"]


def bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels "(-inf, e1]", "(e1, e2]", ..., "(e_last, inf)" with enough digits to differ."""
    digits = 4
    while digits < 17 and len({f"{e:.{digits}g}" for e in edges}) < len(edges):
        digits += 1
    text = [f"{e:.{digits}g}" for e in edges]
    bounds = ["-inf", *text]
    uppers = [f"{t}]" for t in text] + ["inf)"]
    return [f"({lo}, {hi}" for lo, hi in zip(bounds, uppers, strict=True)]


def histogram(
    labels: list[str],
    ref_counts: npt.ArrayLike,
    cur_counts: npt.ArrayLike,
    sides: Sides,
) -> dict[str, Any]:
    """The report's histogram entry: each side's counts as shares of its total."""
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    return {
        "labels": labels,
        "reference": (r / r.sum()).tolist() if r.sum() else [0.0] * len(labels),
        "current": (c / c.sum()).tolist() if c.sum() else [0.0] * len(labels),
        "reference_label": sides[0],
        "current_label": sides[1],
    }
