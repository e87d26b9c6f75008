"""Drift verdicts and the report: injected drift flagged and undrifted data left alone across
seeds, minimum samples, the null-rate check, p-values on small references only, the reasons and
settings in words, per-feature thresholds, and the report's shape, outputs and errors."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from featurestore._profiles import merge_profiles, profile_frame
from featurestore.definitions._monitoring import DriftConfig
from featurestore.errors import ReportError
from featurestore.monitoring import (
    DriftFeature,
)
from featurestore.monitoring._drift import compute_drift
from featurestore.monitoring._report import Verdict
from tests.monitoring.drift_frames import drift_of, entry_of, mixed_frame, psi_edges, with_nulls

# ------------------------------------------------------------------ verdicts


@pytest.mark.parametrize("seed", range(5))
def test_no_false_positives_on_undrifted_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    report = drift_of(mixed_frame(rng, 5000), mixed_frame(rng, 5000))
    assert report.flagged == []
    assert {f.verdict for f in report.features} == {Verdict.OK}, [
        (f.ref, f.reasons) for f in report.features if f.verdict is not Verdict.OK
    ]


@pytest.mark.parametrize("seed", range(3))
def test_injected_drift_is_flagged(seed: int) -> None:
    rng = np.random.default_rng(seed)
    report = drift_of(mixed_frame(rng, 5000), mixed_frame(rng, 5000, drift=0.3))
    assert sorted(report.flagged) == ["v:active", "v:age", "v:amount", "v:country", "v:score"]


def test_insufficient_data_instead_of_a_verdict() -> None:
    rng = np.random.default_rng(8)
    report = drift_of(mixed_frame(rng, 300), mixed_frame(rng, 300, drift=0.6))
    rows = "300 reference and 300 current rows, needs 500 per side"
    for f in report.features:
        assert f.verdict is Verdict.INSUFFICIENT_DATA, f.ref
        assert f.reasons[-1] == f"insufficient data for the null rate: {rows}"
    assert report.flagged == []
    values = "300 reference and 300 current values"
    assert entry_of(report, "amount")["reasons"] == [
        f"insufficient data for PSI: {values}, needs 500 per side",
        f"insufficient data for KS distance: {values}, needs 1,000 per side",
        f"insufficient data for the null rate: {rows}",
    ]
    assert entry_of(report, "country")["reasons"][0] == f"insufficient data for categories: {rows}"
    assert entry_of(report, "active")["reasons"][0] == (
        f"insufficient data for the true rate: {values}, needs 500 per side"
    )
    # enough for PSI (500 per side) but not for D (1,000)
    mid = entry_of(drift_of(mixed_frame(rng, 700), mixed_frame(rng, 700, drift=0.6)), "amount")
    assert mid["verdict"] == Verdict.FLAGGED
    assert mid["stats"]["psi"] > 0.25 and mid["stats"]["ks_d"] is None
    assert mid["reasons"][1] == (
        "insufficient data for KS distance: 700 reference and 700 current values, needs 1,000 "
        "per side"
    )


def test_null_rate_is_its_own_check() -> None:
    rng = np.random.default_rng(9)
    values = rng.normal(0, 1, 5000)
    ref = pl.DataFrame({"x": with_nulls(values, rng, 0.01)})
    cur = pl.DataFrame({"x": with_nulls(values, rng, 0.08)})  # the same values, more nulls
    got = entry_of(drift_of(ref, cur), "x")
    assert got["verdict"] == Verdict.FLAGGED
    assert got["stats"]["null_rate_change"] == pytest.approx(
        cur["x"].null_count() / 5000 - ref["x"].null_count() / 5000
    )
    s = got["stats"]
    assert s["psi"] < 0.1
    assert got["reasons"] == [
        f"null-rate change {s['null_rate_change']:.3g} >= 0.05 (flagged): null rate rose from "
        f"{s['null_rate_reference']:.1%} to {s['null_rate_current']:.1%}; likely an upstream "
        "source missing values, a failed join or entities without rows"
    ]


def test_p_values_only_on_small_references() -> None:
    rng = np.random.default_rng(10)
    small = drift_of(
        mixed_frame(rng, 800), mixed_frame(rng, 2000), {"score": DriftConfig(min_rows_ks=500)}
    )
    amount = entry_of(small, "amount")["stats"]
    assert {"psi_p_value", "null_rate_p_value"} <= set(amount)
    assert amount["ks_d"] is None  # D needs 1,000 values per side by default
    score = entry_of(small, "score")["stats"]
    assert 0 <= score["psi_p_value"] <= 1 and 0 <= score["ks_p_value"] <= 1
    assert {"chi2_p_value", "null_rate_p_value"} <= set(entry_of(small, "country")["stats"])
    assert "true_rate_p_value" in entry_of(small, "active")["stats"]
    large = drift_of(mixed_frame(rng, 2000), mixed_frame(rng, 2000))
    for f in large.to_dict()["features"]:
        assert not [k for k in f["stats"] if k.endswith("p_value")], f["ref"]


def test_a_breach_on_a_small_reference_needs_significance() -> None:
    """The same 0.06 share change warns on 5,000 rows but is noise on 600."""

    def rows(n: int, share: float) -> pl.DataFrame:
        k = round(n * share)
        return pl.DataFrame({"c": ["a"] * k + ["b"] * (n - k)})

    big = entry_of(drift_of(rows(5000, 0.50), rows(5000, 0.56)), "c")
    assert big["verdict"] == Verdict.WARN and big["stats"]["linf"] == pytest.approx(0.06)
    share = "the share of 'a' rose from 50.0% to 56.0%"
    assert big["reasons"] == [f"L-inf distance 0.06 >= 0.05 (warn): {share}"]
    small = entry_of(drift_of(rows(600, 0.50), rows(600, 0.56)), "c")
    assert small["verdict"] == Verdict.OK
    p = small["stats"]["chi2_p_value"]
    assert p > 0.01
    assert small["reasons"] == [
        "L-inf distance 0.06 is past 0.05 but not significant on a reference this small "
        f"(p = {p:.2g} >= 0.01): {share}"
    ]


def test_per_feature_thresholds_override_the_defaults() -> None:
    rng = np.random.default_rng(12)
    ref, cur = mixed_frame(rng, 5000), mixed_frame(rng, 5000, drift=0.3)
    lenient = DriftConfig(psi_warn=5, psi_flag=10, ks_flag=1, null_rate_flag=1)
    report = drift_of(ref, cur, {"amount": lenient})
    assert "v:amount" not in report.flagged and "v:score" in report.flagged
    assert report.settings["overrides"] == (
        "v:amount: psi_warn=5.0, psi_flag=10.0, ks_flag=1.0, null_rate_flag=1.0"
    )


# ------------------------------------------------------------------ report shape


def test_report_shape_order_and_outputs() -> None:
    rng = np.random.default_rng(13)
    when = [dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i) for i in range(3000)]
    ref = mixed_frame(rng, 3000).with_columns(when=pl.Series(when))
    cur = mixed_frame(rng, 3000, drift=0.3).with_columns(when=ref["when"])
    report = drift_of(ref, cur)
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
    assert data["settings"]["numeric: PSI"] == (
        "10 bins at the reference's quantiles k/10 (deciles), open outer bins, +0.5 added to "
        "every count; warn at 0.1, flag at 0.25; needs 500 non-null values per side; p-value: "
        "chi-square over the bins"
    )
    assert data["settings"]["categorical: unseen"] == (
        "share of current rows in categories the reference never saw (known when the reference "
        "recorded all its categories); flag above 1.0%"
    )
    when = entry_of(report, "when")
    assert (when["kind"], when["histogram"]) == ("temporal", None)
    amount = entry_of(report, "amount")
    labels = amount["histogram"]["labels"]
    bounds = [label[1:-1].split(", ") for label in labels]  # "(lower, upper]", open outer bins
    assert bounds[0][0] == "-inf" and bounds[-1][1] == "inf" and labels[-1].endswith(")")
    assert [b[0] for b in bounds[1:]] == [b[1] for b in bounds[:-1]]
    edges = psi_edges(profile_frame(ref)["amount"], 10)
    assert [float(b[1]) for b in bounds[:-1]] == pytest.approx(edges.tolist(), rel=1e-3)
    assert sum(amount["histogram"]["reference"]) == pytest.approx(1)
    assert amount["histogram"]["reference"] == pytest.approx([0.1] * 10, abs=1e-3)
    assert (amount["owner"], amount["dtype"], amount["kind"]) == ("risk-team", "Float64", "numeric")
    table = report.to_polars()
    assert table.height == 6 and {"ref", "verdict", "psi", "linf"} <= set(table.columns)


def test_current_profiles_merged_give_the_same_report() -> None:
    rng = np.random.default_rng(14)
    ref, cur = mixed_frame(rng, 2000), mixed_frame(rng, 3000, drift=0.1)
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
