"""The drift statistics, each against an independent computation on the raw rows: numpy
histograms for PSI, scipy's ks_2samp and wasserstein_distance, quantile shifts, numpy shares for
categories, unseen categories and the true rate of booleans."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from featurestore._profiles import TOP_K, profile_frame
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._report import Verdict
from tests.monitoring.drift_frames import drift_of, entry_of, psi_edges, with_nulls


def _psi_oracle(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> tuple[float, np.ndarray]:
    """PSI at ``edges`` by numpy, bins (e[i-1], e[i]] with open outer bins and +0.5 per count,
    and the current side's shares per bin."""

    def counts(x: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)

    r, c = counts(ref) + 0.5, counts(cur) + 0.5
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r))), counts(cur) / len(cur)


# ------------------------------------------------------------------ numeric statistics


@pytest.mark.parametrize(
    ("make", "bins"),
    [
        (lambda rng, n, s: rng.normal(10 + s, 2, n), 10),
        (lambda rng, n, s: rng.integers(0, 6 + int(4 * s), n), 10),  # ties: merged edges
        (lambda rng, n, s: rng.lognormal(s, 1, n), 20),
        (lambda rng, n, s: rng.exponential(1 + s, n), 7),  # edges rounded to percentiles
    ],
)
def test_psi_equals_numpy_histogram_at_the_same_edges(
    make: Callable[..., np.ndarray], bins: int
) -> None:
    rng = np.random.default_rng(bins)
    ref, cur = make(rng, 3000, 0.0), make(rng, 2500, 0.4)
    report = drift_of(
        pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur}), {"x": DriftConfig(bins=bins)}
    )
    edges = psi_edges(profile_frame(pl.DataFrame({"x": ref}))["x"], bins)
    expected, shares = _psi_oracle(ref, cur, edges)
    got = entry_of(report, "x")
    assert got["stats"]["psi"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert got["histogram"]["current"] == pytest.approx(shares.tolist(), abs=1e-15)
    assert len(got["histogram"]["labels"]) == len(edges) + 1


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "case",
    ["shift", "scale", "same", "far", "narrow", "lognormal", "integers", "zero_inflated"],
)
def test_ks_distance_and_wasserstein_against_scipy(seed: int, case: str) -> None:
    """D is exact at the reference percentiles and just below each, so it never exceeds the
    exact statistic and misses at most the reference mass between two percentiles; the
    Wasserstein distance is within 0.01 reference standard deviations."""
    rng = np.random.default_rng(seed)
    n = 4000
    ref, cur = {
        "shift": (rng.normal(0, 1, n), rng.normal(0.3, 1, n)),
        "scale": (rng.normal(0, 1, n), rng.normal(0, 1.5, n)),
        "same": (rng.normal(0, 1, n), rng.normal(0, 1, n)),
        "far": (rng.normal(0, 1, n), rng.normal(5, 1, n)),
        "narrow": (rng.normal(0, 1, n), rng.normal(0, 0.05, n)),
        "lognormal": (rng.lognormal(0, 1, n), rng.lognormal(0.2, 1.1, n)),
        "integers": (rng.integers(0, 5, n), rng.integers(0, 6, n)),
        "zero_inflated": (
            np.where(rng.random(n) < 0.3, 0.0, rng.exponential(1, n)),
            np.where(rng.random(n) < 0.2, 0.0, rng.exponential(1, n) - 0.1),
        ),
    }[case]
    s = entry_of(drift_of(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})), "x")["stats"]
    exact = stats.ks_2samp(ref, cur).statistic
    assert s["ks_d"] <= exact + 1e-12
    assert exact - s["ks_d"] <= 0.01 + 2 / n
    std = float(np.std(ref, ddof=1))
    w = s["wasserstein_std"] * std
    assert w == pytest.approx(stats.wasserstein_distance(ref, cur), abs=0.01 * std)
    assert s["mean_shift_std"] == pytest.approx((np.mean(cur) - np.mean(ref)) / std, rel=1e-9)
    assert s["std_ratio"] == pytest.approx(np.std(cur, ddof=1) / std, rel=1e-9)
    assert s["js_distance"] >= 0


@pytest.mark.parametrize("seed", [3, 4])
def test_quantile_shifts_within_one_reference_percentile(seed: int) -> None:
    """The current side is counted at the reference's percentiles, so its quantiles are known
    to within the percentile interval that holds them."""
    rng = np.random.default_rng(seed)
    ref, cur = rng.normal(0, 1, 5000), rng.normal(0.5, 2, 5000)
    s = entry_of(drift_of(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})), "x")["stats"]
    reference = profile_frame(pl.DataFrame({"x": ref}))["x"]
    knots = np.sort(np.concatenate([reference.cdf_points, [cur.min(), cur.max()]]))
    for p in (5, 25, 50, 75, 95):
        exact = float(np.quantile(cur, p / 100))
        at = np.searchsorted(knots, exact)
        width = knots[at] - knots[at - 1]
        got = s[f"q{p:02d}_shift"] + reference.quantiles[p]
        assert abs(got - exact) <= width, (p, got, exact, width)


# ------------------------------------------------------------------ categorical and boolean


def _bucket_oracle(
    ref: list[str | None], cur: list[str | None]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    counts = Counter(v for v in ref if v is not None)
    top = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]]

    def shares(values: list[str | None]) -> np.ndarray:
        c = Counter("NULL" if v is None else v if v in top else "OTHER" for v in values)
        return np.array([c[k] for k in [*top, "OTHER", "NULL"]], dtype=float)

    return [*top, "OTHER", "NULL"], shares(ref), shares(cur)


@pytest.mark.parametrize("n_categories", [4, 30])
def test_categorical_distances_match_numpy(n_categories: int) -> None:
    rng = np.random.default_rng(n_categories)
    names = np.array([f"c{i:02d}" for i in range(n_categories)])
    w = 1.0 / np.arange(1, n_categories + 1)
    ref = with_nulls(rng.choice(names, 4000, p=w / w.sum()), rng, 0.02)
    w2 = np.roll(w, 1)
    cur_names = np.concatenate([names, ["brand_new"]])
    cur = with_nulls(
        rng.choice(cur_names, 3000, p=np.append(w2 / w2.sum() * 0.97, 0.03)), rng, 0.05
    )
    got = entry_of(drift_of(pl.DataFrame({"c": ref}), pl.DataFrame({"c": cur})), "c")
    labels, r, c = _bucket_oracle(ref, cur)
    gaps = c / c.sum() - r / r.sum()
    worst = int(np.argmax(np.abs(gaps)))
    s = got["stats"]
    assert s["linf"] == pytest.approx(abs(gaps[worst]), abs=1e-15)
    assert s["linf_category"] == labels[worst]
    rs, cs = (r + 0.5) / (r + 0.5).sum(), (c + 0.5) / (c + 0.5).sum()
    assert s["psi"] == pytest.approx(float(np.sum((cs - rs) * np.log(cs / rs))), rel=1e-12)
    assert s["js_distance"] == pytest.approx(jensenshannon(r / r.sum(), c / c.sum(), base=2))
    unseen = sum(1 for v in cur if v is not None and v not in set(ref))
    assert s["unseen_share"] == pytest.approx(unseen / len(cur))
    assert got["histogram"]["labels"] == labels
    assert got["histogram"]["reference"] == pytest.approx((r / r.sum()).tolist())
    assert got["verdict"] == Verdict.FLAGGED
    new = sum(v == "brand_new" for v in cur) / len(cur)
    assert (
        f"{new:.1%} of current rows are categories the reference never saw (flag above 1.0%), "
        f"e.g. 'brand_new' ({new:.1%}); likely a new upstream value or a changed spelling"
    ) in got["reasons"]


def test_unseen_categories_flag_only_above_one_percent() -> None:
    ref = ["a", "b"] * 2000
    few = ["a", "b"] * 1990 + ["z"] * 20  # 0.5% unseen
    many = ["a", "b"] * 1950 + ["z"] * 100  # 2.5% unseen
    assert (
        entry_of(drift_of(pl.DataFrame({"c": ref}), pl.DataFrame({"c": few})), "c")["verdict"]
        == Verdict.OK
    )
    flagged = entry_of(drift_of(pl.DataFrame({"c": ref}), pl.DataFrame({"c": many})), "c")
    assert flagged["verdict"] == Verdict.FLAGGED
    assert flagged["stats"]["unseen_share"] == pytest.approx(0.025)


@pytest.mark.parametrize(
    ("rate", "verdict"), [(0.31, Verdict.OK), (0.37, Verdict.WARN), (0.45, Verdict.FLAGGED)]
)
def test_boolean_true_rate(rate: float, verdict: Verdict) -> None:
    rng = np.random.default_rng(4)
    ref = with_nulls(rng.random(5000) < 0.3, rng, 0.01)
    cur = with_nulls(rng.random(5000) < rate, rng, 0.01)
    schema = {"b": pl.Boolean}
    got = entry_of(
        drift_of(pl.DataFrame({"b": ref}, schema=schema), pl.DataFrame({"b": cur}, schema=schema)),
        "b",
    )
    r = np.mean([v for v in ref if v is not None])
    c = np.mean([v for v in cur if v is not None])
    assert got["stats"]["true_rate_change"] == pytest.approx(c - r, rel=1e-12)
    assert got["verdict"] == verdict
    assert got["histogram"]["labels"] == ["false", "true", "NULL"]
