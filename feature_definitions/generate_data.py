"""Synthetic card-payment data for the fraud-detection example: users, merchants, transactions.

Deterministic (the same seed writes byte-identical Parquet files) and vectorized with NumPy
and Polars, so it scales to millions of transactions. Profiles change over time (snapshots,
late corrections, a few data-entry errors), so point-in-time joins matter, and the fraud label
depends on the features the repo declares. Run ``python generate_data.py --users 2000``
(``--end now`` moves the same data in time to end now, as ``featurestore demo`` does).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import polars.selectors as cs

__all__ = ["DEFAULT_START", "FILES", "generate", "training_spine"]

DEFAULT_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
SECOND_US = 1_000_000
FAVORITES = 8  # merchants a user keeps coming back to

COUNTRIES = ["US", "GB", "DE", "FR", "ES", "CA", "BR", "IN"]
COUNTRY_WEIGHTS = np.array([0.42, 0.14, 0.11, 0.09, 0.07, 0.07, 0.05, 0.05])

# category -> (weight, median ticket, risk Beta(a, b), share of online-only merchants)
CATEGORIES: dict[str, tuple[float, float, tuple[float, float], float]] = {
    "grocery": (0.22, 45.0, (1.5, 18.0), 0.05),
    "restaurants": (0.20, 38.0, (1.5, 15.0), 0.0),
    "fuel": (0.12, 55.0, (1.5, 15.0), 0.0),
    "fashion": (0.14, 85.0, (2.0, 12.0), 0.3),
    "electronics": (0.10, 320.0, (3.0, 8.0), 0.4),
    "travel": (0.07, 540.0, (2.5, 10.0), 0.6),
    "gaming": (0.08, 30.0, (3.0, 7.0), 0.8),
    "gift_cards": (0.07, 100.0, (4.0, 6.0), 0.7),
}
CHANNELS = ["pos", "online", "mobile"]


def _utc_us(value: dt.datetime) -> int:
    """Microseconds since the epoch; naive datetimes are UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _ts(values: np.ndarray | pl.Expr) -> pl.Series | pl.Expr:
    """Epoch microseconds as a UTC Datetime column."""
    if isinstance(values, pl.Expr):
        return values.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return pl.Series(values, dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _tens(expr: pl.Expr) -> pl.Expr:
    """Round to a multiple of ten, as credit limits are."""
    return (expr / 10).round() * 10


def _write(frame: pl.DataFrame, path: Path, shift_us: int = 0) -> Path:
    """Write ``frame`` with every time in it moved ``shift_us`` microseconds later."""
    if shift_us:
        frame = frame.with_columns(cs.datetime() + pl.duration(microseconds=shift_us))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd", statistics=True)
    return path


def _users(rng: np.random.Generator, n: int, start: int, end: int) -> dict[str, np.ndarray]:
    """One row of base attributes per user, plus latent traits that drive fraud."""
    days = (end - start) / DAY_US
    before = rng.random(n) < 0.88
    account_age = np.minimum(rng.exponential(500.0, n), 6 * 365.0) + 1.0
    signup = np.where(
        before,
        start - account_age * DAY_US,
        start + rng.random(n) * 0.8 * days * DAY_US,
    ).astype(np.int64)
    kyc = rng.choice(3, n, p=[0.25, 0.5, 0.25])
    log_limit: npt.NDArray[np.float64] = np.log(1500.0) + 0.45 * kyc
    return {
        "user_id": np.arange(1, n + 1, dtype=np.int64),
        "signup": signup,
        "age": np.clip(np.round(18 + rng.gamma(3.0, 8.0, n)), 18, 95).astype(np.int32),
        "country": rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS),
        "country_missing": rng.random(n) < 0.015,
        "email_verified": rng.random(n) < 0.9,
        "phone_verified": rng.random(n) < 0.65,
        "kyc": kyc,
        "credit_limit": np.round(np.exp(rng.normal(log_limit, 0.5)), -1),
        "risky": rng.random(n) < 0.04,
        "rate": np.exp(rng.normal(np.log(1.2), 0.6, n)),  # transactions per day
    }


def _profile_updates(
    rng: np.random.Generator, users: dict[str, np.ndarray], start: int, end: int
) -> pl.DataFrame:
    """Each user's profile after a baseline export and each later update, in time order."""
    n = len(users["user_id"])
    baseline = np.maximum(users["signup"], start - (rng.random(n) * 150 * DAY_US).astype(np.int64))
    updates = rng.poisson(1.2, n)
    who = np.repeat(np.arange(n), updates)
    m = len(who)
    when = baseline[who] + (rng.random(m) * (end - baseline[who])).astype(np.int64)
    moved = np.where(rng.random(m) < 0.03, rng.choice(len(COUNTRIES), m, p=COUNTRY_WEIGHTS), -1)
    rows = pl.DataFrame(
        {
            "u": np.concatenate([np.arange(n), who]),
            "updated_us": np.concatenate([baseline, when]),
            "kyc_up": np.concatenate([np.zeros(n), rng.random(m) < 0.3]).astype(np.int32),
            "phone_now": np.concatenate([np.zeros(n, bool), rng.random(m) < 0.4]),
            "limit_step": np.concatenate([np.zeros(n), rng.normal(0.05, 0.15, m)]),
            "moved_to": np.concatenate([np.full(n, -1), moved]),
        }
    ).sort("u", "updated_us")
    idx = rows["u"].to_numpy()
    base_country = np.where(users["country_missing"], -1, users["country"])[idx]
    return rows.with_columns(
        pl.Series("signup_us", users["signup"][idx]),
        pl.Series("email_verified", users["email_verified"][idx]),
        pl.Series("age", users["age"][idx]),
        (pl.col("kyc_up").cum_sum().over("u") + users["kyc"][idx])
        .clip(0, 2)
        .cast(pl.Int32)
        .alias("kyc_level"),
        (pl.col("phone_now").cum_max().over("u") | users["phone_verified"][idx]).alias(
            "phone_verified"
        ),
        _tens(pl.col("limit_step").cum_sum().over("u").exp() * users["credit_limit"][idx]).alias(
            "credit_limit"
        ),
        pl.when(pl.col("moved_to") >= 0)
        .then(pl.col("moved_to"))
        .forward_fill()
        .over("u")
        .fill_null(pl.Series(base_country))
        .alias("country_idx"),
    )


def _user_snapshots(
    rng: np.random.Generator, users: dict[str, np.ndarray], start: int, end: int
) -> pl.DataFrame:
    """Profile snapshots: a baseline export, later updates, a few typos and late corrections."""
    rows = _profile_updates(rng, users, start, end)
    k = rows.height
    birth_year = dt.datetime.fromtimestamp(start / 1e6, dt.UTC).year - rows["age"].to_numpy()
    typo = rng.random(k) < 0.006  # the birth year typed into the age field
    rows = rows.with_columns(
        pl.Series(
            "created_us",
            rows["updated_us"].to_numpy() + rng.integers(30 * SECOND_US, 6 * HOUR_US, k),
        ),
        pl.Series("entered_age", np.where(typo, birth_year, rows["age"].to_numpy()), pl.Int32),
        pl.Series("fix", (typo & (rng.random(k) < 0.5)) | (rng.random(k) < 0.01)),
        pl.Series("fix_delay", rng.integers(DAY_US, 3 * DAY_US, k)),
    )
    # a correction shares updated_at with the row it fixes and carries a later created_at
    corrections = rows.filter(pl.col("fix")).with_columns(
        pl.col("created_us") + pl.col("fix_delay"),
        pl.col("age").alias("entered_age"),
        pl.when(pl.col("entered_age") == pl.col("age"))
        .then(_tens(pl.col("credit_limit") * 1.1))
        .otherwise(pl.col("credit_limit"))
        .alias("credit_limit"),
    )
    return (
        pl.concat([rows, corrections])
        .select(
            (pl.col("u") + 1).cast(pl.Int64).alias("user_id"),
            _ts(pl.col("updated_us")).alias("updated_at"),
            _ts(pl.col("created_us")).alias("created_at"),
            _ts(pl.col("signup_us")).alias("signup_at"),
            pl.col("entered_age").alias("age"),
            pl.when(pl.col("country_idx") >= 0)
            .then(pl.col("country_idx").replace_strict(range(len(COUNTRIES)), COUNTRIES))
            .alias("country"),
            "email_verified",
            "phone_verified",
            "kyc_level",
            "credit_limit",
        )
        .sort("user_id", "updated_at", "created_at")
    )


def _merchants(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Base merchant attributes: category, country, channel, typical ticket and risk."""
    names = list(CATEGORIES)
    weights = np.array([CATEGORIES[c][0] for c in names])
    cat = rng.choice(len(names), n, p=weights / weights.sum())
    median = np.array([CATEGORIES[c][1] for c in names])[cat]
    alpha = np.array([CATEGORIES[c][2][0] for c in names])[cat]
    beta = np.array([CATEGORIES[c][2][1] for c in names])[cat]
    online = np.array([CATEGORIES[c][3] for c in names])[cat]
    return {
        "merchant_id": np.arange(1001, 1001 + n, dtype=np.int64),
        "category": cat,
        "country": rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS),
        "online_only": rng.random(n) < online,
        "ticket": np.round(median * np.exp(rng.normal(0.0, 0.35, n)), 2),
        "risk": rng.beta(alpha, beta),
        "popularity": np.exp(rng.normal(0.0, 1.0, n)),
    }


def _merchant_snapshots(
    rng: np.random.Generator,
    merchants: dict[str, np.ndarray],
    start: int,
    end: int,
    drift_at: int | None = None,
) -> pl.DataFrame:
    """Weekly re-scored snapshots: the risk score wanders over time, the typical ticket stays.

    From ``drift_at`` on (if given), the injected drift: a new scoring model rates every
    merchant riskier (``risk_score`` about twice as high), and a re-classification marks a
    third of the in-store merchants as online-only (``online_only``).
    """
    n = len(merchants["merchant_id"])
    weeks = int((end - start) // (7 * DAY_US)) + 2
    m = np.repeat(np.arange(n), weeks)
    week = np.tile(np.arange(weeks), n)
    updated = start + (week - 1) * 7 * DAY_US + (rng.random(n * weeks) * DAY_US).astype(np.int64)
    risk_walk = rng.normal(0.0, 0.02, (n, weeks)).cumsum(axis=1).ravel()
    names = list(CATEGORIES)
    risk = np.clip(merchants["risk"][m] + risk_walk, 0.0, 1.0)
    online = merchants["online_only"][m]
    reclassified = (rng.random(n) < 0.35)[m]  # drawn even without drift: same data otherwise
    if drift_at is not None:
        after = updated >= drift_at
        risk = np.where(after, np.clip(risk * 2.0 + 0.05, 0.0, 1.0), risk)
        online = online | (after & reclassified)
    frame = pl.DataFrame(
        {
            "merchant_id": merchants["merchant_id"][m],
            "updated_at": _ts(updated),
            "category": np.array(names)[merchants["category"][m]],
            "risk_score": np.round(risk, 4),
            "avg_ticket": merchants["ticket"][m],
            "country": np.array(COUNTRIES)[merchants["country"][m]],
            "online_only": online,
        }
    )
    return frame.filter(pl.col("updated_at").dt.epoch("us") < end).sort("merchant_id", "updated_at")


def _favorites(
    rng: np.random.Generator, users: dict[str, np.ndarray], merchants: dict[str, np.ndarray]
) -> np.ndarray:
    """Each user's regular merchants, mostly domestic and popular ones."""
    n = len(users["user_id"])
    out = np.empty((n, FAVORITES), dtype=np.int64)
    for c in range(len(COUNTRIES)):  # one draw per country, not per user
        who = np.flatnonzero(users["country"] == c)
        if len(who) == 0:
            continue
        w = merchants["popularity"] * np.where(merchants["country"] == c, 40.0, 1.0)
        out[who] = rng.choice(len(w), (len(who), FAVORITES), p=w / w.sum())
    return out


def _payments(
    rng: np.random.Generator,
    users: dict[str, np.ndarray],
    merchants: dict[str, np.ndarray],
    start: int,
    end: int,
) -> dict[str, np.ndarray]:
    """Everyday payments with a fraud label that depends on user, merchant and amount."""
    n = len(users["user_id"])
    active_from = np.maximum(start, users["signup"])
    active_days = (end - active_from) / DAY_US
    counts = rng.poisson(users["rate"] * active_days)
    u = np.repeat(np.arange(n), counts)
    k = len(u)
    t = active_from[u] + (rng.random(k) * (end - active_from[u])).astype(np.int64)
    favorites = _favorites(rng, users, merchants)
    pop = merchants["popularity"] / merchants["popularity"].sum()
    m = np.where(
        rng.random(k) < 0.85,
        favorites[u, rng.integers(0, FAVORITES, k)],
        rng.choice(len(pop), k, p=pop),
    )
    ticket = merchants["ticket"][m]
    amount = np.maximum(np.round(ticket * np.exp(rng.normal(0.0, 0.6, k)), 2), 1.0)
    online = merchants["online_only"][m]
    channel = np.where(
        online,
        np.where(rng.random(k) < 0.7, 1, 2),
        rng.choice(3, k, p=[0.65, 0.2, 0.15]),
    )
    tenure_days = (t - users["signup"][u]) / DAY_US
    cross_border = users["country"][u] != merchants["country"][m]
    logit = (
        -7.4
        + 3.0 * merchants["risk"][m]
        + 0.9 * (channel != 0)
        + 0.8 * np.clip(np.log(amount / ticket), -1.0, 3.0)
        + 1.2 * (tenure_days < 30)
        - 0.4 * users["kyc"][u]
        + 0.7 * cross_border
        + 1.6 * users["risky"][u]
        - 0.5 * users["phone_verified"][u]
    )
    fraud = rng.random(k) < 1.0 / (1.0 + np.exp(-logit))
    return {
        "user": u,
        "merchant": m,
        "time": t,
        "amount": amount,
        "channel": channel,
        "fraud": fraud,
    }


def _takeovers(
    rng: np.random.Generator,
    users: dict[str, np.ndarray],
    merchants: dict[str, np.ndarray],
    start: int,
    end: int,
) -> dict[str, np.ndarray]:
    """Account takeovers: a burst of large online purchases at one or two risky merchants."""
    active_from = np.maximum(start, users["signup"])
    taken = np.flatnonzero(rng.random(len(users["user_id"])) < 0.03)
    burst_start = active_from[taken] + (
        rng.random(len(taken)) * np.maximum(end - active_from[taken] - DAY_US, 0)
    ).astype(np.int64)
    burst_len = (rng.uniform(1.0, 7.0, len(taken)) * DAY_US).astype(np.int64)
    risk_w = merchants["risk"] ** 3 * merchants["popularity"]
    targets = rng.choice(len(risk_w), (len(taken), 2), p=risk_w / risk_w.sum())
    sizes = 3 + rng.poisson(5.0, len(taken))
    b = np.repeat(np.arange(len(taken)), sizes)
    kb = len(b)
    bt = np.minimum(burst_start[b] + (rng.random(kb) * burst_len[b]).astype(np.int64), end - 1)
    bm = targets[b, rng.integers(0, 2, kb)]
    b_amount = np.round(merchants["ticket"][bm] * np.exp(rng.normal(np.log(3.0), 0.5, kb)), 2)
    return {"user": taken[b], "merchant": bm, "time": bt, "amount": b_amount}


def _transactions(
    rng: np.random.Generator,
    users: dict[str, np.ndarray],
    merchants: dict[str, np.ndarray],
    start: int,
    end: int,
) -> pl.DataFrame:
    """Card transactions, everyday payments and takeover bursts, with their fraud label and
    the time of any chargeback."""
    paid = _payments(rng, users, merchants, start, end)
    burst = _takeovers(rng, users, merchants, start, end)
    kb = len(burst["time"])
    times = np.concatenate([paid["time"], burst["time"]])
    is_fraud = np.concatenate([paid["fraud"], np.ones(kb, bool)])
    total = len(times)
    reported = is_fraud & (rng.random(total) < 0.85)
    chargeback = times + (rng.uniform(3.0, 45.0, total) * DAY_US).astype(np.int64)
    chargeback = np.where(reported & (chargeback < end), chargeback, -1)
    frame = pl.DataFrame(
        {
            "event_us": times,
            "user_id": users["user_id"][np.concatenate([paid["user"], burst["user"]])],
            "merchant_id": merchants["merchant_id"][
                np.concatenate([paid["merchant"], burst["merchant"]])
            ],
            "amount": np.concatenate([paid["amount"], burst["amount"]]),
            "channel_idx": np.concatenate([paid["channel"], np.where(rng.random(kb) < 0.8, 1, 2)]),
            "is_fraud": is_fraud,
            "chargeback_us": chargeback,
        }
    ).sort("event_us", "user_id", "merchant_id", "amount")
    return frame.select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("txn_id"),
        _ts(pl.col("event_us")).alias("event_time"),
        "user_id",
        "merchant_id",
        "amount",
        pl.col("channel_idx").replace_strict(range(3), CHANNELS).alias("channel"),
        "is_fraud",
        pl.when(pl.col("chargeback_us") >= 0)
        .then(_ts(pl.col("chargeback_us")))
        .alias("chargeback_at"),
    )


def _pair_history(
    rng: np.random.Generator,
    transactions: pl.DataFrame,
    users: dict[str, np.ndarray],
    start: int,
    end: int,
) -> pl.DataFrame:
    """What each user-merchant pair did in the year before the data starts, at the pair's
    in-window pace, so cumulative counts do not all start from zero at ``start``."""
    days = (end - start) / DAY_US
    pairs = (
        transactions.group_by("user_id", "merchant_id")
        .agg(pl.len().alias("n"), pl.col("amount").mean().alias("avg"))
        .sort("user_id", "merchant_id")  # group order varies; the draws must not
    )
    signup = users["signup"][pairs["user_id"].to_numpy() - 1]
    prior_days = np.clip((start - signup) / DAY_US, 0.0, 365.0)
    txns = rng.poisson(pairs["n"].to_numpy() * prior_days / days)
    return pairs.select(
        "user_id",
        "merchant_id",
        pl.Series("txns", txns, pl.Int64),
        (pl.Series(txns) * pl.col("avg")).alias("amount"),
    ).filter(pl.col("txns") > 0)


def _user_merchant_daily(
    transactions: pl.DataFrame, history: pl.DataFrame, start: int, end: int
) -> pl.DataFrame:
    """Cumulative per user-merchant history, snapshotted at each midnight (UTC) after activity.

    A snapshot stamped D 00:00 covers everything before it, so it never leaks a transaction
    into its own features. Pairs with ``history`` before ``start`` get a snapshot at ``start``.
    """
    day = pl.col("ts").dt.epoch("us") // DAY_US
    before = history.select(
        "user_id",
        "merchant_id",
        _ts(pl.lit(start - DAY_US, pl.Int64)).alias("ts"),
        "txns",
        "amount",
        pl.lit(0, pl.Int64).alias("chargebacks"),
    )
    txns = transactions.select(
        "user_id",
        "merchant_id",
        pl.col("event_time").alias("ts"),
        pl.lit(1, pl.Int64).alias("txns"),
        pl.col("amount"),
        pl.lit(0, pl.Int64).alias("chargebacks"),
    )
    chargebacks = transactions.filter(pl.col("chargeback_at").is_not_null()).select(
        "user_id",
        "merchant_id",
        pl.col("chargeback_at").alias("ts"),
        pl.lit(0, pl.Int64).alias("txns"),
        pl.lit(0.0).alias("amount"),
        pl.lit(1, pl.Int64).alias("chargebacks"),
    )
    daily = (
        pl.concat([before, txns, chargebacks])
        .group_by("user_id", "merchant_id", day.alias("day"))
        .agg(pl.col("txns").sum(), pl.col("amount").sum(), pl.col("chargebacks").sum())
        .sort("user_id", "merchant_id", "day")
    )
    keys = ["user_id", "merchant_id"]
    return daily.select(
        *keys,
        _ts((pl.col("day") + 1) * DAY_US).alias("snapshot_at"),
        pl.col("txns").cum_sum().over(keys).alias("txn_count"),
        pl.col("chargebacks").cum_sum().over(keys).alias("chargeback_count"),
        pl.col("amount").cum_sum().over(keys).round(2).alias("amount_total"),
    ).filter(pl.col("snapshot_at").dt.epoch("us") <= end)


FILES = {  # each source's file under the data directory
    "users": Path("users.parquet"),
    "merchants": Path("merchants.parquet"),
    # a directory of parts: pushed payments land beside it as new parts
    "transactions": Path("transactions") / "part-000.parquet",
    "user_merchant_daily": Path("user_merchant_daily.parquet"),
}


def _frames(
    seed: int, n_users: int, start: int, end: int, drift_at: int | None
) -> dict[str, pl.DataFrame]:
    """Every source's rows between ``start`` and ``end`` (epoch microseconds), by name."""
    user_rng, snap_rng, merchant_rng, msnap_rng, txn_rng, pair_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)
    )
    users = _users(user_rng, n_users, start, end)
    merchants = _merchants(merchant_rng, max(20, n_users // 10))
    transactions = _transactions(txn_rng, users, merchants, start, end)
    history = _pair_history(pair_rng, transactions, users, start, end)
    return {
        "users": _user_snapshots(snap_rng, users, start, end),
        "merchants": _merchant_snapshots(msnap_rng, merchants, start, end, drift_at),
        "transactions": transactions,
        "user_merchant_daily": _user_merchant_daily(transactions, history, start, end),
    }


def generate(
    data_dir: Path,
    n_users: int = 2_000,
    seed: int = 7,
    start: dt.datetime | None = None,
    days: int = 60,
    drift_at: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, Path]:
    """Write users, merchants, transactions and user-merchant daily snapshots to ``data_dir``.

    Returns the path of each file by source name; the same arguments give identical files.
    ``drift_at`` injects drift into two merchant features from that time on (see
    :func:`_merchant_snapshots`); transactions are unchanged by it. ``end`` moves the data in
    time: every time is shifted so that the data ends at ``end`` instead of ``days`` after
    ``start``, and nothing else changes (``drift_at`` is then a time of the moved data).
    Transactions go to ``transactions/part-000.parquet``; parts pushed there since an earlier
    run are removed, so the data is the generated data alone.
    """
    if n_users < 1 or days < 1:
        raise ValueError(f"n_users and days must be positive, found {n_users} and {days}")
    data_dir = Path(data_dir)
    for part in (data_dir / "transactions").glob("*.parquet"):
        part.unlink()
    start_us = _utc_us(start or DEFAULT_START)
    end_us = start_us + days * DAY_US
    shift_us = 0 if end is None else _utc_us(end) - end_us
    drift_us = None if drift_at is None else _utc_us(drift_at) - shift_us
    frames = _frames(seed, n_users, start_us, end_us, drift_us)
    return {name: _write(frames[name], data_dir / path, shift_us) for name, path in FILES.items()}


def training_spine(data_dir: Path, n: int | None = None, seed: int = 7) -> pl.DataFrame:
    """Labelled transactions to build a training set for, in time order.

    ``n`` samples that many transactions (reproducibly, by ``seed``); None takes them all.
    """
    frame = pl.read_parquet(Path(data_dir) / "transactions" / "part-*.parquet")
    if n is not None and n < frame.height:
        frame = frame.sample(n, seed=seed).sort("event_time", "txn_id")
    return frame.select(
        "user_id",
        "merchant_id",
        pl.col("event_time").alias("event_timestamp"),
        "amount",
        "channel",
        "is_fraud",
    )


def _end_time(text: str) -> dt.datetime:
    """``now`` (to the second) or an ISO 8601 time; a time without a zone is UTC."""
    if text.strip().lower() == "now":
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    value = dt.datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument(
        "--end",
        type=_end_time,
        default=None,
        help="when the data ends: 'now' or an ISO 8601 time (default: --days after 2025-01-01)",
    )
    args = parser.parse_args()
    files = generate(args.data_dir, args.users, args.seed, days=args.days, end=args.end)
    for name, path in files.items():
        print(f"{name}: {pl.scan_parquet(path).select(pl.len()).collect().item():,} rows -> {path}")
