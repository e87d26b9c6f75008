"""The skew report's causes one by one, on hand-made rows: which apply to which feature, what
each counts and says, in the report's order."""

from __future__ import annotations

import datetime as dt

import polars as pl

from featurestore import Feature
from featurestore.definitions._monitoring import SkewConfig
from featurestore.monitoring._skew._causes import CAUSES, Cause, CauseContext
from featurestore.monitoring._skew._specs import Spec, view_col


def spec(ref: str, parts: tuple[str, ...], on_demand: bool = False) -> Spec:
    """A compared feature whose registry fingerprint is "fp-now"."""
    return Spec(
        index=0,
        ref=ref,
        served=True,
        feature=Feature("x", pl.Float64),
        on_demand=on_demand,
        kind="numeric",
        config=SkewConfig(),
        owner=None,
        fingerprint="fp-now",
        views=("v",),
        parts=parts,
        inputs=(),
        keys=("user_id",),
        request_columns=(),
    )


def causes(context: CauseContext) -> dict[str, Cause | None]:
    return {cause.__name__: cause(context) for cause in CAUSES}


def test_each_cause_applies_only_where_it_can_be_judged() -> None:
    """Freshness causes need event times and a batch view (rows or events); an on-demand output
    whose inputs left no trace in the log says so instead of blaming the function."""
    output = spec("odfv:out", ("v",), on_demand=True)
    rows = pl.DataFrame({output.col("fp"): ["fp-old", "fp-now"], output.col("afp"): ["fp-old"] * 2})
    found = causes(CauseContext(output, rows, [output], event_times_logged=False))
    assert found == {
        "definition_changed": Cause(
            "definition_changed_rows",
            2,
            "definition changed since serving: 2 of 2 mismatching rows were served while "
            "fingerprint fp-old was applied, the registry now has fp-now",
        ),
        "earlier_definition": Cause(
            "earlier_definition_rows",
            1,
            "values of an earlier definition: on 1 of 2 mismatching rows the online store served "
            "values computed by fingerprint fp-now, not the definition applied at the time; "
            "materialize after every apply that changes a feature",
        ),
        "stale_materialization": None,
        "served_newer": None,
        "events_behind": None,
        "pushed_missing_offline": None,
        "inputs_differ": None,
        "function_differs": None,
        "inputs_unknown": Cause(
            None,
            0,
            "on-demand output: whether its inputs differ is unknown (neither its input features "
            "nor event times were logged)",
        ),
    }

    plain = spec("v:x", ("v",))
    at = [dt.datetime(2024, 1, d, tzinfo=dt.UTC) for d in (1, 2, 3)]
    rows = pl.DataFrame(
        {
            plain.col("fp"): ["fp-now"] * 3,
            plain.col("afp"): ["fp-now"] * 3,
            view_col("se", "v"): [at[0], at[2], None],  # older, newer, none served
            view_col("oe", "v"): [at[1], at[1], at[1]],
        }
    )
    with_times = causes(CauseContext(plain, rows, [plain], event_times_logged=True))
    assert {name for name, c in with_times.items() if c is not None} == {
        "definition_changed",
        "earlier_definition",
        "stale_materialization",
        "served_newer",
    }
    assert (with_times["stale_materialization"].rows, with_times["served_newer"].rows) == (2, 1)
    assert with_times["definition_changed"] == Cause("definition_changed_rows", 0, None)
    without = causes(CauseContext(plain, rows, [plain], event_times_logged=False))
    assert without["stale_materialization"] is None and without["served_newer"] is None
