"""The drift report: each statistic against an independent computation on the raw rows (numpy
histograms for PSI, scipy's ks_2samp and wasserstein_distance, numpy shares for categories),
injected drift flagged and undrifted data left alone across seeds, minimum samples, the
null-rate check, p-values on small references only, the report's shape, and the sides."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from featurestore import FeatureReferenceError, FeatureStore
from featurestore._profiles import TOP_K, FeatureProfile, merge_profiles, profile_frame
from featurestore.definitions._monitoring import DriftConfig
from featurestore.errors import ReportError
from featurestore.monitoring._drift import DriftFeature, DriftReport, compute_drift
from featurestore.monitoring._drift_inputs import (
    ServingLogSide,
    SourceSide,
    TrainingSetSide,
    parse_side,
    to_side,
)
from featurestore.monitoring._report import Verdict

# ------------------------------------------------------------------ helpers


def _report(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    configs: dict[str, DriftConfig] | None = None,
) -> DriftReport:
    features = [
        DriftFeature(
            ref=f"v:{c}",
            column=c,
            owner="risk-team",
            dtype=reference.schema[c],
            config=(configs or {}).get(c, DriftConfig()),
        )
        for c in reference.columns
    ]
    return compute_drift(
        profile_frame(reference),
        current,
        features,
        reference_label="train",
        current_label="serving",
    )


def _feature(report: DriftReport, column: str) -> dict[str, Any]:
    return next(f for f in report.to_dict()["features"] if f["ref"] == f"v:{column}")


def _nulls(values: np.ndarray, rng: np.random.Generator, share: float) -> list[Any]:
    mask = rng.random(len(values)) < share
    return [None if m else v for v, m in zip(values.tolist(), mask, strict=True)]


def _psi_oracle(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray) -> tuple[float, np.ndarray]:
    """PSI at ``edges`` by numpy, bins (e[i-1], e[i]] with open outer bins and +0.5 per count,
    and the current side's shares per bin."""

    def counts(x: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)

    r, c = counts(ref) + 0.5, counts(cur) + 0.5
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r))), counts(cur) / len(cur)


def _edges(profile: FeatureProfile, bins: int) -> np.ndarray:
    """The documented rule: the reference's quantiles at k/bins to the nearest percentile."""
    return np.unique([profile.quantiles[round(100 * k / bins)] for k in range(1, bins)])


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
    report = _report(
        pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur}), {"x": DriftConfig(bins=bins)}
    )
    edges = _edges(profile_frame(pl.DataFrame({"x": ref}))["x"], bins)
    expected, shares = _psi_oracle(ref, cur, edges)
    got = _feature(report, "x")
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
    s = _feature(_report(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})), "x")["stats"]
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
    s = _feature(_report(pl.DataFrame({"x": ref}), pl.DataFrame({"x": cur})), "x")["stats"]
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
    ref = _nulls(rng.choice(names, 4000, p=w / w.sum()), rng, 0.02)
    w2 = np.roll(w, 1)
    cur_names = np.concatenate([names, ["brand_new"]])
    cur = _nulls(rng.choice(cur_names, 3000, p=np.append(w2 / w2.sum() * 0.97, 0.03)), rng, 0.05)
    got = _feature(_report(pl.DataFrame({"c": ref}), pl.DataFrame({"c": cur})), "c")
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
    assert any("never saw" in reason and "'brand_new'" in reason for reason in got["reasons"])


def test_unseen_categories_flag_only_above_one_percent() -> None:
    ref = ["a", "b"] * 2000
    few = ["a", "b"] * 1990 + ["z"] * 20  # 0.5% unseen
    many = ["a", "b"] * 1950 + ["z"] * 100  # 2.5% unseen
    assert (
        _feature(_report(pl.DataFrame({"c": ref}), pl.DataFrame({"c": few})), "c")["verdict"]
        == Verdict.OK
    )
    flagged = _feature(_report(pl.DataFrame({"c": ref}), pl.DataFrame({"c": many})), "c")
    assert flagged["verdict"] == Verdict.FLAGGED
    assert flagged["stats"]["unseen_share"] == pytest.approx(0.025)


@pytest.mark.parametrize(
    ("rate", "verdict"), [(0.31, Verdict.OK), (0.37, Verdict.WARN), (0.45, Verdict.FLAGGED)]
)
def test_boolean_true_rate(rate: float, verdict: Verdict) -> None:
    rng = np.random.default_rng(4)
    ref = _nulls(rng.random(5000) < 0.3, rng, 0.01)
    cur = _nulls(rng.random(5000) < rate, rng, 0.01)
    schema = {"b": pl.Boolean}
    got = _feature(
        _report(pl.DataFrame({"b": ref}, schema=schema), pl.DataFrame({"b": cur}, schema=schema)),
        "b",
    )
    r = np.mean([v for v in ref if v is not None])
    c = np.mean([v for v in cur if v is not None])
    assert got["stats"]["true_rate_change"] == pytest.approx(c - r, rel=1e-12)
    assert got["verdict"] == verdict
    assert got["histogram"]["labels"] == ["false", "true", "NULL"]


# ------------------------------------------------------------------ verdicts


def _mixed(rng: np.random.Generator, n: int, drift: float = 0.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "amount": rng.lognormal(3 + drift, 1, n),
            "age": rng.integers(18, 80 + int(40 * drift), n),
            "score": _nulls(rng.normal(drift, 1, n), rng, 0.02),
            "country": rng.choice(
                ["FR", "US", "DE", "IT"], n, p=[0.4 - drift / 2, 0.3, 0.2, 0.1 + drift / 2]
            ),
            "active": rng.random(n) < 0.5 + drift / 2,
        }
    )


@pytest.mark.parametrize("seed", range(5))
def test_no_false_positives_on_undrifted_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    report = _report(_mixed(rng, 5000), _mixed(rng, 5000))
    assert report.flagged == []
    assert {f.verdict for f in report.features} == {Verdict.OK}, [
        (f.ref, f.reasons) for f in report.features if f.verdict is not Verdict.OK
    ]


@pytest.mark.parametrize("seed", range(3))
def test_injected_drift_is_flagged(seed: int) -> None:
    rng = np.random.default_rng(seed)
    report = _report(_mixed(rng, 5000), _mixed(rng, 5000, drift=0.3))
    assert sorted(report.flagged) == ["v:active", "v:age", "v:amount", "v:country", "v:score"]


def test_insufficient_data_instead_of_a_verdict() -> None:
    rng = np.random.default_rng(8)
    report = _report(_mixed(rng, 300), _mixed(rng, 300, drift=0.6))
    for f in report.features:
        assert f.verdict is Verdict.INSUFFICIENT_DATA, f.ref
        assert any("needs 500" in r for r in f.reasons)
    assert report.flagged == []
    # enough for PSI (500 per side) but not for D (1,000)
    mid = _feature(_report(_mixed(rng, 700), _mixed(rng, 700, drift=0.6)), "amount")
    assert mid["verdict"] == Verdict.FLAGGED
    assert mid["stats"]["psi"] > 0.25 and mid["stats"]["ks_d"] is None
    assert any("KS distance" in r and "needs 1,000" in r for r in mid["reasons"])


def test_null_rate_is_its_own_check() -> None:
    rng = np.random.default_rng(9)
    values = rng.normal(0, 1, 5000)
    ref = pl.DataFrame({"x": _nulls(values, rng, 0.01)})
    cur = pl.DataFrame({"x": _nulls(values, rng, 0.08)})  # the same values, more nulls
    got = _feature(_report(ref, cur), "x")
    assert got["verdict"] == Verdict.FLAGGED
    assert got["stats"]["null_rate_change"] == pytest.approx(
        cur["x"].null_count() / 5000 - ref["x"].null_count() / 5000
    )
    assert got["stats"]["psi"] < 0.1
    assert any(r.startswith("null-rate change") and "rose" in r for r in got["reasons"])


def test_p_values_only_on_small_references() -> None:
    rng = np.random.default_rng(10)
    small = _report(_mixed(rng, 800), _mixed(rng, 2000), {"score": DriftConfig(min_rows_ks=500)})
    amount = _feature(small, "amount")["stats"]
    assert {"psi_p_value", "null_rate_p_value"} <= set(amount)
    assert amount["ks_d"] is None  # D needs 1,000 values per side by default
    score = _feature(small, "score")["stats"]
    assert 0 <= score["psi_p_value"] <= 1 and 0 <= score["ks_p_value"] <= 1
    assert {"chi2_p_value", "null_rate_p_value"} <= set(_feature(small, "country")["stats"])
    assert "true_rate_p_value" in _feature(small, "active")["stats"]
    large = _report(_mixed(rng, 2000), _mixed(rng, 2000))
    for f in large.to_dict()["features"]:
        assert not [k for k in f["stats"] if k.endswith("p_value")], f["ref"]


def test_a_breach_on_a_small_reference_needs_significance() -> None:
    """The same 0.06 share change warns on 5,000 rows but is noise on 600."""

    def rows(n: int, share: float) -> pl.DataFrame:
        k = round(n * share)
        return pl.DataFrame({"c": ["a"] * k + ["b"] * (n - k)})

    big = _feature(_report(rows(5000, 0.50), rows(5000, 0.56)), "c")
    assert big["verdict"] == Verdict.WARN and big["stats"]["linf"] == pytest.approx(0.06)
    small = _feature(_report(rows(600, 0.50), rows(600, 0.56)), "c")
    assert small["verdict"] == Verdict.OK
    assert small["stats"]["chi2_p_value"] > 0.01
    assert any("not significant" in r for r in small["reasons"])


def test_per_feature_thresholds_override_the_defaults() -> None:
    rng = np.random.default_rng(12)
    ref, cur = _mixed(rng, 5000), _mixed(rng, 5000, drift=0.3)
    lenient = DriftConfig(psi_warn=5, psi_flag=10, ks_flag=1, null_rate_flag=1)
    report = _report(ref, cur, {"amount": lenient})
    assert "v:amount" not in report.flagged and "v:score" in report.flagged
    assert "v:amount: psi_warn=5.0, psi_flag=10.0, ks_flag=1.0" in report.settings["overrides"]


# ------------------------------------------------------------------ report shape


def test_report_shape_order_and_outputs() -> None:
    rng = np.random.default_rng(13)
    when = [dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i) for i in range(3000)]
    ref = _mixed(rng, 3000).with_columns(when=pl.Series(when))
    cur = _mixed(rng, 3000, drift=0.3).with_columns(when=ref["when"])
    report = _report(ref, cur)
    data = report.to_dict()
    json.dumps(data, default=str, allow_nan=False)
    assert data["kind"] == "drift"
    assert data["summary"]["features"] == 6
    assert data["summary"]["flagged"] == len(report.flagged) == 5
    assert data["summary"]["ok"] == 1  # the datetime column: null rate only
    ranks = [Verdict(f["verdict"]).rank for f in data["features"]]
    assert ranks == sorted(ranks)
    assert {"decisions", "numeric: PSI", "null rate", "categorical: unseen"} <= set(
        data["settings"]
    )
    assert "warn at 0.1, flag at 0.25" in data["settings"]["numeric: PSI"]
    when = _feature(report, "when")
    assert (when["kind"], when["histogram"]) == ("temporal", None)
    amount = _feature(report, "amount")
    labels = amount["histogram"]["labels"]
    assert labels[0].startswith("(-inf, ") and labels[-1].endswith(", inf)")
    assert sum(amount["histogram"]["reference"]) == pytest.approx(1)
    assert amount["histogram"]["reference"] == pytest.approx([0.1] * 10, abs=1e-3)
    assert (amount["owner"], amount["dtype"], amount["kind"]) == ("risk-team", "Float64", "numeric")
    table = report.to_polars()
    assert table.height == 6 and {"ref", "verdict", "psi", "linf"} <= set(table.columns)


def test_current_profiles_merged_give_the_same_report() -> None:
    rng = np.random.default_rng(14)
    ref, cur = _mixed(rng, 2000), _mixed(rng, 3000, drift=0.1)
    profiles = profile_frame(ref)
    features = [DriftFeature(f"v:{c}", c, None, ref.schema[c]) for c in ref.columns]
    a = profile_frame(cur.head(1000), reference=profiles)
    b = profile_frame(cur.tail(2000), reference=profiles)
    merged = {c: merge_profiles(a[c], b[c]) for c in cur.columns}
    labels = {"reference_label": "r", "current_label": "c"}
    direct = compute_drift(profiles, cur, features, **labels).to_dict()["features"]
    via = compute_drift(profiles, merged, features, **labels).to_dict()["features"]
    for x, y in zip(direct, via, strict=True):
        assert x["verdict"] == y["verdict"] and x["histogram"] == y["histogram"]
        assert x["stats"].keys() == y["stats"].keys()
        for key, value in x["stats"].items():
            other = y["stats"][key]
            assert value == (pytest.approx(other, rel=1e-9) if isinstance(other, float) else other)
    with pytest.raises(ReportError, match="not taken at its reference"):
        compute_drift(profiles, profile_frame(cur), features, **labels)


def test_clear_errors_for_bad_input() -> None:
    ref = pl.DataFrame({"x": [1.0, 2.0]})
    profiles = profile_frame(ref)
    labels = {"reference_label": "r", "current_label": "c"}
    with pytest.raises(ReportError, match=r"no profile for \['v:y'\]"):
        compute_drift(profiles, ref, [DriftFeature("v:y", "y", None, "Float64")], **labels)
    with pytest.raises(ReportError, match=r"lack columns for \['v:x'\]; found columns: z"):
        compute_drift(
            profiles,
            pl.DataFrame({"z": [1]}),
            [DriftFeature("v:x", "x", None, "Float64")],
            **labels,
        )
    with pytest.raises(ReportError, match="no features"):
        compute_drift(profiles, ref, [], **labels)


# ------------------------------------------------------------------ sides


NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data/train.parquet", TrainingSetSide(Path("data/train.parquet"))),
        ("log:7d", ServingLogSide(NOW - dt.timedelta(days=7), NOW)),
        ("log:12h", ServingLogSide(NOW - dt.timedelta(hours=12), NOW)),
        (
            "log:2025-03-01..2025-03-08",
            ServingLogSide(
                dt.datetime(2025, 3, 1, tzinfo=dt.UTC), dt.datetime(2025, 3, 8, tzinfo=dt.UTC)
            ),
        ),
        (
            "log:2025-03-01T06:30Z..",
            ServingLogSide(dt.datetime(2025, 3, 1, 6, 30, tzinfo=dt.UTC), NOW),
        ),
        (
            "source:user_stats:2025-03-01..2025-03-02T12:00",
            SourceSide(
                "user_stats",
                dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
                dt.datetime(2025, 3, 2, 12, tzinfo=dt.UTC),
            ),
        ),
        ("source:user_stats:1w", SourceSide("user_stats", NOW - dt.timedelta(weeks=1), NOW)),
    ],
)
def test_parse_side(text: str, expected: object) -> None:
    assert parse_side(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("log:", "expected a window START..END"),
        ("log:7x", "expected a window START..END"),
        ("log:2025-13-01..2025-03-02", "not an ISO date"),
        ("log:2025-03-08..2025-03-01", "starts at or after its end"),
        ("source:user_stats", "source:VIEW:START..END"),
        ("yesterday", "cannot read 'yesterday' as a drift side"),
    ],
)
def test_parse_side_errors(text: str, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_side(text, now=NOW)


def test_to_side() -> None:
    side = ServingLogSide(None, NOW)
    assert to_side(side) is side
    assert to_side(Path("a.parquet")) == TrainingSetSide(Path("a.parquet"))
    assert isinstance(to_side("log:1d"), ServingLogSide)
    with pytest.raises(ReportError, match="found int"):
        to_side(3)  # type: ignore[arg-type]


DEFINITIONS = '''
"""Definitions of the drift test repo."""

import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource, RequestSource
from featurestore import on_demand_feature_view
from featurestore.definitions._monitoring import DriftConfig

user = Entity("user", join_keys=["user_id"])

stats = FeatureView(
    name="stats",
    entities=[user],
    owner="risk-team",
    source=FileSource(name="events", path="data/events.parquet", timestamp_field="ts"),
    features=[
        Feature("amount", pl.Float64, drift=DriftConfig(psi_flag=0.3)),
        Feature("double_amount", pl.Float64, expr=pl.col("amount") * 2),
        Feature("country", pl.String),
        Feature("active", pl.Boolean),
    ],
)


@on_demand_feature_view(
    sources=[RequestSource("req", schema={"x": pl.Float64}), stats],
    schema={"ratio": pl.Float64},
)
def scaled(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("x") / pl.col("amount")).alias("ratio"))
'''

JAN, FEB, MAR = dt.datetime(2024, 1, 1), dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 1)
USERS = 1500


def _events(rng: np.random.Generator) -> pl.DataFrame:
    """Two rows per user in January and two in February, when amounts and countries drift."""
    frames = []
    for month, drift in ((JAN, 0.0), (FEB, 1.0)):
        n = 2 * USERS
        frames.append(
            pl.DataFrame(
                {
                    "user_id": np.tile(np.arange(USERS), 2),
                    "ts": [month + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 40000, n)],
                    "amount": rng.normal(100 + 15 * drift, 10, n),
                    "country": rng.choice(
                        ["FR", "US", "DE"], n, p=[0.5 - drift / 4, 0.3, 0.2 + drift / 4]
                    ),
                    "active": rng.random(n) < 0.5,
                },
                schema_overrides={"ts": pl.Datetime("us")},
            )
        )
    return pl.concat(frames)


@pytest.fixture
def drift_store(make_repo: Callable[..., Path]) -> Any:
    rng = np.random.default_rng(0)
    repo = make_repo(
        "drift",
        DEFINITIONS,
        config="project: drift\nserving_log: {enabled: true}\n",
        data={"data/events.parquet": _events(rng)},
    )
    store = FeatureStore(repo)
    store.apply()
    yield store
    store.close()


def _january_training_set(store: Any, tmp_path: Path) -> Path:
    spine = pl.DataFrame(
        {
            "user_id": np.arange(USERS),
            "event_timestamp": [FEB - dt.timedelta(seconds=1)] * USERS,
            "x": np.ones(USERS),
        },
        schema_overrides={"event_timestamp": pl.Datetime("us")},
    )
    refs = ["stats:amount", "stats:double_amount", "stats:country", "stats:active", "scaled:ratio"]
    return store.get_training_set(spine, refs).save(tmp_path / "january.parquet")


def test_training_set_against_source_windows(drift_store: Any, tmp_path: Path) -> None:
    path = _january_training_set(drift_store, tmp_path)
    feb = drift_store.drift_report(TrainingSetSide(path), SourceSide("stats", FEB, MAR))
    assert set(feb.flagged) == {"stats:amount", "stats:double_amount", "stats:country"}
    assert {f.ref for f in feb.features} == {
        "stats:amount",
        "stats:double_amount",
        "stats:country",
        "stats:active",
    }  # the on-demand feature has no source
    amount = next(f for f in feb.features if f.ref == "stats:amount")
    assert amount.owner == "risk-team" and amount.stats["rows_current"] == 2 * USERS
    assert "stats:amount: psi_flag=0.3" in feb.settings["overrides"]
    assert feb.to_dict()["summary"]["reference"] == "training set january.parquet"
    jan = drift_store.drift_report(TrainingSetSide(path), SourceSide("stats", JAN, FEB))
    assert jan.flagged == []
    # the source rows of the window against the training set's rows as the current side
    back = drift_store.drift_report(
        SourceSide("stats", JAN, FEB), TrainingSetSide(path), ["stats:amount"]
    )
    assert [f.ref for f in back.features] == ["stats:amount"] and back.flagged == []


def test_serving_log_windows(drift_store: Any, tmp_path: Path) -> None:
    path = _january_training_set(drift_store, tmp_path)
    drift_store.materialize(end=MAR)  # February values online
    users = list(range(USERS))
    drift_store.get_online_features(
        features=["stats:amount", "stats:country"], entities={"user_id": users}
    )
    drift_store.get_online_features(
        features=["stats:amount", "stats:active"], entities={"user_id": users[:1000]}
    )
    report = drift_store.drift_report(TrainingSetSide(path), parse_side("log:1d"))
    by_ref = {f.ref: f for f in report.features}
    assert set(by_ref) == {"stats:amount", "stats:country", "stats:active"}
    assert by_ref["stats:amount"].stats["rows_current"] == USERS + 1000  # both requests
    assert by_ref["stats:active"].stats["rows_current"] == 1000  # only the second served it
    assert set(report.flagged) == {"stats:amount", "stats:country"}
    assert report.current_label.startswith("serving log [")
    # the log as the reference: profiles per feature from the records that served it
    same = drift_store.drift_report(ServingLogSide(), ServingLogSide(), ["stats:amount"])
    assert same.features[0].verdict is Verdict.OK and same.features[0].stats["psi"] < 1e-9


def test_side_errors(drift_store: Any, tmp_path: Path) -> None:
    path = _january_training_set(drift_store, tmp_path)
    with pytest.raises(
        FeatureReferenceError,
        match=r"'stats:amout' is not in training set january\.parquet\. "
        r"Did you mean 'stats:amount'",
    ):
        drift_store.drift_report(
            TrainingSetSide(path), SourceSide("stats", FEB, MAR), ["stats:amout"]
        )
    with pytest.raises(FeatureReferenceError, match="Did you mean 'stats'"):
        drift_store.drift_report(TrainingSetSide(path), SourceSide("stat", FEB, MAR))
    with pytest.raises(ReportError, match="'scaled' is an on-demand view"):
        drift_store.drift_report(TrainingSetSide(path), SourceSide("scaled", FEB, MAR))
    with pytest.raises(ReportError, match="does not exist"):
        drift_store.drift_report(TrainingSetSide(tmp_path / "nope.parquet"), ServingLogSide())
    with pytest.raises(ReportError, match="serving log has no records"):
        drift_store.drift_report(TrainingSetSide(path), ServingLogSide(JAN, FEB))
