"""The demo's windowed aggregations: served fresh at request time with the same values
offline, moved at once by a burst of pushed payments, and aged out as time passes, all
without re-materializing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
from rich import box
from rich.table import Table

from featurestore._format import number
from featurestore._store import FeatureStore
from featurestore.cli._demo._compact import fits
from featurestore.cli._demo._compare import same
from featurestore.cli._demo._context import TIMESTAMP, DemoContext
from featurestore.cli._render import timestamp
from featurestore.errors import RepoError
from featurestore.online import PushResult

__all__ = ["windows_and_push"]

WINDOW_VIEW = "user_spending"  # the example's windowed aggregations over transactions
PUSHED = ((1, 480.0), (2, 515.5), (3, 530.0))  # (minutes after the end, amount) of a burst
LATER = ((dt.timedelta(hours=1), "1 hour later"), (dt.timedelta(days=1), "1 day later"))


def _window_row(
    store: FeatureStore, user: int, at: dt.datetime, label: str, timed: bool
) -> list[str]:
    """One table row: the window features of ``user`` served as of ``at`` (and that time when
    ``timed``)."""
    view = store.repo.views[WINDOW_VIEW]
    resp = store.get_online_features(
        features=[f"{WINDOW_VIEW}:{a.name}" for a in view.aggregations],
        entities={"user_id": [user]},
        request_time=at,
    )
    cells = [label, timestamp(at)] if timed else [label]
    for column, values in resp.values.items():
        value = values[0]
        cells.append(resp.statuses[column][0].value if value is None else number(value))
    return cells


def _online_equals_offline(
    store: FeatureStore, refs: list[str], user: int, at: dt.datetime
) -> tuple[list[str], bool]:
    """The window columns, and whether ``user``'s values served as of ``at`` equal those of a
    training set at the same time."""
    online = store.get_online_features(features=refs, entities={"user_id": [user]}, request_time=at)
    offline = store.get_training_set(
        pl.DataFrame({"user_id": [user], TIMESTAMP: [at]}), features=refs
    ).to_polars()
    return list(online.values), all(same(online.values[c][0], offline[c][0]) for c in online.values)


def _burst(user: int, merchant: int, at: dt.datetime) -> list[dict[str, Any]]:
    """A few payments of ``user`` just after ``at``."""
    return [
        {
            "user_id": user,
            "event_time": at + dt.timedelta(minutes=m),
            "amount": amount,
            "merchant_id": merchant,
        }
        for m, amount in PUSHED
    ]


def windows_and_push(ctx: DemoContext) -> None:
    """Windowed aggregations served fresh at request time: the same values offline, a burst of
    pushed payments moving them at once, and old events leaving the windows as time passes,
    all without re-materializing."""
    store, spine, at = ctx.store, ctx.spine, ctx.served_at
    if store is None or spine is None or at is None:
        raise RepoError("the demo must materialize before it can show windowed aggregations")
    if WINDOW_VIEW not in store.repo.views or "user_id" not in spine.columns:
        ctx.out.print(f"[dim]this repo has no view {WINDOW_VIEW!r}; nothing to show[/]")
        return
    source = store.repo.views[WINDOW_VIEW].source.name
    refs = [f"{WINDOW_VIEW}:{a.name}" for a in store.repo.views[WINDOW_VIEW].aggregations]
    user = int(spine["user_id"][-1])
    columns, equal = _online_equals_offline(store, refs, user, at)
    verdict = "[green]equal offline ones[/]" if equal else "[red]differ from offline ones[/]"
    ctx.out.print(
        f"user {user}'s last payment, at {timestamp(at)} UTC: online window values {verdict}"
    )
    timed = ctx.verbose  # the labels tell the times apart; --verbose adds them
    rows = [_window_row(store, user, at, "materialized", timed)]
    result = store.push(source, _burst(user, int(spine["merchant_id"][-1]), at))
    after = at + dt.timedelta(minutes=PUSHED[-1][0] + 1)
    rows.append(_window_row(store, user, after, f"+{result.events} pushed", timed))
    landed = _online_equals_offline(store, refs, user, after)[1]
    rows += [_window_row(store, user, after + later, label, timed) for later, label in LATER]
    ctx.out.print(_window_table(["", *(["as of (UTC)"] if timed else []), *columns], rows, ctx))
    _explain_push(ctx, source, result, after, landed)
    store.materialize(at, views=[WINDOW_VIEW])  # as of the earlier time, for the later steps


def _window_table(header: list[str], rows: list[list[str]], ctx: DemoContext) -> Table:
    """The window values over time, without the last columns that do not fit the console."""
    shown = len(header)
    while True:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for column in header[:shown]:
            table.add_column(column, justify="right" if column else "left", no_wrap=True)
        for row in rows:
            table.add_row(*row[:shown])
        if shown <= 2 or fits(table, ctx.out.width):
            return table
        shown -= 1


def _explain_push(
    ctx: DemoContext, source: str, result: PushResult, after: dt.datetime, landed: bool
) -> None:
    """What the push did online and where it landed offline."""
    where = Path(result.offline_file).name if result.offline_file else "nowhere"
    verdict = "[green]holds the same values[/]" if landed else "[red]differs[/]"
    if not ctx.verbose:
        ctx.out.print(
            f"pushed {result.events} payments with store.push('{source}', rows): windows rise "
            "at once, then age out"
        )
        ctx.out.print(
            f"pushed rows land offline too: a training set at {timestamp(after)} UTC {verdict}"
        )
        return
    ctx.out.print(
        f"pushed a burst of {result.events} payments through store.push('{source}', rows) "
        "(POST /v1/push on the server); the windows cover (t - window, t) at each request "
        "time t, so values rise with the burst and fall as payments age out, with no "
        "materialization in between"
    )
    ctx.out.print(
        f"the push also landed in the source's files (data/transactions/{where}): a training "
        f"set at {timestamp(after)} UTC {verdict}, so the next materialization keeps "
        "the pushed payments"
    )
