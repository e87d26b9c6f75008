"""The likely causes the skew report names for on-demand outputs, through a real store: only
the inputs that differed (whole views, and a ``"view:feature"`` input), on requests with and
without the inputs, or the function itself when no input did."""

from __future__ import annotations

import pytest

from tests.monitoring.skew_causes_repo import (
    ACTIVITY,
    PROFILE,
    T0,
    T2,
    N,
    Stores,
    assert_clean,
    serve,
    stale_activity,
)


def test_an_on_demand_output_over_two_views_names_only_the_stale_ones_inputs(
    open_causes_store: Stores,
) -> None:
    store = stale_activity(open_causes_store)
    serve(store, ["both:mix", *PROFILE, *ACTIVITY])
    report = store.skew_report()

    assert sorted(report.flagged) == sorted(["both:mix", *ACTIVITY])
    mix = report.result("both:mix")
    assert (mix.rows_compared, mix.mismatches) == (N, 60)
    assert mix.causes == {
        "definition_changed_rows": 0,
        "earlier_definition_rows": 0,
        "inputs_differ_rows": 60,
    }
    assert mix.reasons[1] == (
        "on-demand output whose inputs differ: on 60 of 60 mismatching rows these inputs were "
        "not the same online and offline: activity:clicks (60 rows), activity:spend (60 rows)"
    )
    assert "profile" not in mix.reasons[1]
    assert_clean(report, PROFILE)


def test_an_on_demand_output_served_alone_names_the_stale_view(
    open_causes_store: Stores,
) -> None:
    store = stale_activity(open_causes_store)
    serve(store, ["both:mix"])
    mix = store.skew_report().result("both:mix")

    assert mix.mismatches == 60
    assert mix.causes["inputs_differ_rows"] == 60
    assert mix.reasons[1] == (
        "on-demand output whose inputs differ: on 60 of 60 mismatching rows these inputs were "
        "not the same online and offline: rows of view 'activity' (60 rows)"
    )


def test_an_on_demand_output_with_a_view_feature_input_names_that_reference(
    open_causes_store: Stores,
) -> None:
    store = stale_activity(open_causes_store)
    # activity:clicks differs too, but is no input of one_input
    serve(store, ["one_input:spend_x", *ACTIVITY])
    report = store.skew_report()

    r = report.result("one_input:spend_x")
    assert (r.rows_compared, r.mismatches) == (N, 60)
    assert r.causes["inputs_differ_rows"] == 60
    assert r.reasons[1] == (
        "on-demand output whose inputs differ: on 60 of 60 mismatching rows these inputs were "
        "not the same online and offline: activity:spend (60 rows)"
    )
    assert report.result("activity:clicks").mismatches == 60
    # served alone (a later request), the stored rows of its one view decide
    serve(store, ["one_input:spend_x"], at=T2)
    alone = store.skew_report(start=T2).result("one_input:spend_x")
    assert (alone.rows_compared, alone.causes["inputs_differ_rows"]) == (N, 60)
    assert alone.reasons[1] == (
        "on-demand output whose inputs differ: on 60 of 60 mismatching rows these inputs were "
        "not the same online and offline: rows of view 'activity' (60 rows)"
    )


def test_an_on_demand_output_served_with_and_without_its_inputs_blames_the_inputs_on_both(
    open_causes_store: Stores,
) -> None:
    """Some requests ask for the inputs too, others only for the output: on the latter the
    inputs' values were not served, so the stored rows must decide, not the function."""
    store = stale_activity(open_causes_store, [*range(30), *range(N // 2, N // 2 + 30)])
    serve(store, ["both:mix", *ACTIVITY], range(N // 2))
    serve(store, ["both:mix"], range(N // 2, N))
    mix = store.skew_report().result("both:mix")

    assert (mix.rows_compared, mix.mismatches) == (N, 60)
    assert mix.causes["inputs_differ_rows"] == 60, mix.reasons
    assert mix.reasons[1:] == [  # served values on half the rows, stored rows on the others
        "on-demand output whose inputs differ: on 60 of 60 mismatching rows these inputs were "
        "not the same online and offline: activity:clicks (60 rows), activity:spend (60 rows)"
    ]


def test_an_on_demand_output_that_differs_with_equal_inputs_blames_the_function(
    open_causes_store: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_causes_store()
    store.materialize(end=T0)
    serve(store, ["scaled:scaled", *PROFILE])
    monkeypatch.setenv("SKEW_CAUSES_FACTOR", "3")  # read at run time: not in any fingerprint
    report = store.skew_report()

    assert report.flagged == ["scaled:scaled"]
    r = report.result("scaled:scaled")
    assert r.mismatches == N - 1  # user 0 asks for an amount of 0: 0 * 2 == 0 * 3
    assert r.causes == {
        "definition_changed_rows": 0,
        "earlier_definition_rows": 0,
        "inputs_differ_rows": 0,
    }
    assert r.reasons[1] == (
        "only the on-demand output differs: its inputs (profile:age, profile:score) agree on "
        f"all {N - 1:,} mismatching rows, so the function gives different results online and "
        "offline (does it read state outside its inputs?)"
    )
    assert_clean(report, PROFILE)
