"""featurestore._client.Client against a real server: the library's OnlineResponse with the
same values, statuses and dtypes as in-process retrieval (also as of a given request_time),
the same signature as the facade's, and the library's errors."""

from __future__ import annotations

import datetime as dt
import inspect
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest

from featurestore import FeatureReferenceError, FeatureStore, FeatureStoreError, TransformError
from featurestore._client import Client, decode_response
from featurestore._value_rules import FeatureStatus
from featurestore.errors import OnlineRequestError, OnlineStoreUnavailableError, SpineError
from featurestore.server._encoding import encode_response
from featurestore.serving import OnlineFeatures
from featurestore.serving._response import OnlineResponse

from .conftest import ALL_FEATURES, FRESH_USERS, Server, free_port

ENTITIES = {"user_id": [1, 2, 3, 4, 5], "merchant_id": ["m1", "m2", "m1", "m9", "m1"]}
REQUEST = {
    "amount": [60.0, 90.0, 10.0, 5.0, 1.0],
    "txn_date": [dt.date(2024, 3, 1)] * 5,
}


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


def test_client_returns_what_in_process_retrieval_returns(
    client: Client, local: FeatureStore
) -> None:
    served = client.get_online_features(ALL_FEATURES, entities=ENTITIES, request_data=REQUEST)
    expected = local.get_online_features(ALL_FEATURES, entities=ENTITIES, request_data=REQUEST)
    assert served.values == expected.values
    assert served.statuses == expected.statuses
    assert served.dtypes == expected.dtypes
    assert served.fingerprints == expected.fingerprints
    assert served.refs == expected.refs
    assert served.entities == expected.entities
    frame = served.to_polars(include_statuses=True)
    assert frame.equals(expected.to_polars(include_statuses=True))
    assert frame.schema["age"] == pl.Int32
    assert frame.schema["signup_date"] == pl.Date
    assert frame.schema["last_login"] == pl.Datetime("us")
    assert frame["last_login"][0] == dt.datetime(2024, 5, 1, 12, 30)
    assert served.request_time.tzinfo is not None


@pytest.mark.parametrize("form", ["pandas", "pandas-datetimes", "polars", "arrow", "records"])
def test_entities_and_request_data_as_tables_through_the_client_and_the_facade(
    client: Client, local: FeatureStore, form: str
) -> None:
    """Entity and request columns given as a pandas, Polars or Arrow table or as records give
    what the mapping gives, in process and over HTTP; pandas has no date dtype, so a Date
    request column may come as datetimes at midnight."""
    import pandas as pd

    entities, request = pl.DataFrame(ENTITIES), pl.DataFrame(REQUEST)
    convert = {
        "pandas": lambda f: pd.DataFrame(f.to_dict(as_series=False)),  # dates as objects
        "pandas-datetimes": lambda f: (
            f.to_pandas().astype({"txn_date": "datetime64[us]"})
            if "txn_date" in f.columns
            else f.to_pandas()
        ),
        "polars": lambda f: f,
        "arrow": lambda f: f.to_arrow(),
        "records": lambda f: f.to_dicts(),
    }[form]
    expected = local.get_online_features(ALL_FEATURES, entities=ENTITIES, request_data=REQUEST)
    for where in (client, local):
        got = where.get_online_features(
            ALL_FEATURES, entities=convert(entities), request_data=convert(request)
        )
        assert (got.values, got.statuses, got.entities) == (
            expected.values,
            expected.statuses,
            expected.entities,
        )


def test_a_date_request_column_takes_midnight_datetimes_only(
    client: Client, local: FeatureStore
) -> None:
    """A datetime at midnight counts as its date, online, over HTTP and in a spine; one with
    a time of day is refused on every path (a cast would silently drop the time)."""
    ask: dict[str, Any] = {"features": ["txn_risk:days_since_signup"], "entities": ENTITIES}
    dates = local.get_online_features(**ask, request_data=REQUEST)
    midnights = [dt.datetime.combine(d, dt.time()) for d in REQUEST["txn_date"]]
    at_midnight = {**REQUEST, "txn_date": midnights}
    assert local.get_online_features(**ask, request_data=at_midnight).values == dates.values
    timed = {**REQUEST, "txn_date": [t.replace(hour=13) for t in midnights]}
    with pytest.raises(OnlineRequestError, match="has a time of day"):
        local.get_online_features(**ask, request_data=timed)
    with pytest.raises(OnlineRequestError, match=r"found '2024-03-01T13:00:00'"):
        client.get_online_features(**ask, request_data=timed)

    spine = pl.DataFrame({**ENTITIES, **REQUEST, "event_timestamp": [dt.datetime.now()] * 5})
    features = ["txn_risk:days_since_signup"]
    by_date = local.get_training_set(spine, features=features).to_polars()
    as_datetimes = spine.with_columns(pl.col("txn_date").cast(pl.Datetime("us")))
    by_midnight = local.get_training_set(as_datetimes, features=features).to_polars()
    assert by_midnight["days_since_signup"].equals(by_date["days_since_signup"])
    with pytest.raises(SpineError, match="datetimes with a time of day"):
        local.get_training_set(
            as_datetimes.with_columns(pl.col("txn_date").dt.offset_by("13h")), features=features
        )


def test_client_serves_a_service_with_full_names(client: Client, local: FeatureStore) -> None:
    kwargs = {
        "feature_service": "risk_model",
        "entities": {"user_id": (1, 2), "merchant_id": ("m1", "m2")},  # tuples are sent as lists
        "request_data": {"amount": (1.0, 2.0), "txn_date": [dt.date(2024, 1, 1)] * 2},
        "full_feature_names": True,
    }
    served = client.get_online_features(**kwargs)  # type: ignore[arg-type]
    expected = local.get_online_features(**kwargs)  # type: ignore[arg-type]
    assert list(served.values) == list(expected.values)
    assert "user_profile__age" in served.values
    assert served.values == expected.values


def test_the_client_and_the_facade_offer_the_same_online_features(
    client: Client, local: FeatureStore
) -> None:
    """Every method of the protocol has one signature, annotations and defaults included, in
    the protocol, the facade and the client."""
    methods = [m for m in vars(OnlineFeatures) if not m.startswith("_")]
    assert sorted(methods) == ["get_online_features", "push"]
    for method in methods:
        declared = inspect.signature(getattr(OnlineFeatures, method))
        assert inspect.signature(getattr(Client, method)) == declared, method
        assert inspect.signature(getattr(FeatureStore, method)) == declared, method
    assert isinstance(client, OnlineFeatures)
    assert isinstance(local, OnlineFeatures)


def test_request_time_changes_staleness_through_the_client_as_through_the_facade(
    client: Client, local: FeatureStore
) -> None:
    """User 1's row is a day old (ttl 30 days) and merchant m1's an hour (ttl 1 day): both
    PRESENT now; served as of 2 days later m1's is STALE, as of 40 days later both are."""
    ask: dict[str, Any] = {
        "features": ["user_profile:age", "merchant_stats:n_txn"],
        "entities": {"user_id": [FRESH_USERS[0]], "merchant_id": ["m1"]},
    }
    present, stale = FeatureStatus.PRESENT, FeatureStatus.STALE
    assert client.get_online_features(**ask).statuses == {"age": [present], "n_txn": [present]}
    now = dt.datetime.now(dt.UTC)
    cases = {
        now + dt.timedelta(days=2): {"age": [present], "n_txn": [stale]},
        now + dt.timedelta(days=40): {"age": [stale], "n_txn": [stale]},
    }
    for at, statuses in cases.items():
        for sent in (at, at.isoformat(), at.replace(tzinfo=None)):  # naive means UTC
            served = client.get_online_features(**ask, request_time=sent)
            expected = local.get_online_features(**ask, request_time=sent)
            assert served.statuses == expected.statuses == statuses, sent
            assert served.values == expected.values, sent
            assert served.request_time == expected.request_time, sent
    with pytest.raises(OnlineRequestError, match="is not an ISO 8601 time") as info:
        client.get_online_features(**ask, request_time="yesterday")
    assert info.value.status_code == 400  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "error", "status", "message"),
    [
        (
            {"features": ["user_profile:agee"], "entities": {"user_id": [1]}},
            FeatureReferenceError,
            404,
            "Did you mean 'user_profile:age'?",
        ),
        (
            {"features": ["user_profile:age"], "entities": {"user_id": ["1"]}},
            OnlineRequestError,
            400,
            "join key 'user_id' of view 'user_profile' must be an integer",
        ),
        (
            {"features": ["user_profile:age"], "entities": {"user_id": list(range(1001))}},
            OnlineRequestError,
            413,
            "at most 1000 per request",
        ),
        (
            {
                "features": ["txn_risk:amount_per_age"],
                "entities": {"user_id": [1]},
                "request_data": {"amount": [-1.0], "txn_date": [dt.date(2024, 1, 1)]},
            },
            TransformError,
            500,
            "negative amounts are not supported",
        ),
    ],
)
def test_server_errors_become_library_errors(
    client: Client, kwargs: dict, error: type[Exception], status: int, message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace("?", r"\?")) as info:
        client.get_online_features(**kwargs)
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert len(info.value.request_id) == 32  # type: ignore[attr-defined]


def test_client_lists_features_and_readiness(client: Client, local: FeatureStore) -> None:
    assert {f["ref"] for f in client.list_features()} == {r.ref for r in local.list_features()}
    assert client.ready()


def test_an_unreachable_server_is_unavailable() -> None:
    with Client(f"http://127.0.0.1:{free_port()}", timeout=2) as c:
        with pytest.raises(OnlineStoreUnavailableError, match="is unreachable"):
            c.get_online_features(["user_profile:age"], entities={"user_id": [1]})
        assert not c.ready()


def test_a_wrong_token_is_a_feature_store_error(env_token_server: Server) -> None:
    with Client(env_token_server.url, token="nope") as c:
        with pytest.raises(FeatureStoreError, match="the bearer token is not valid") as info:
            c.get_online_features(["user_profile:age"], entities={"user_id": [1]})
        assert info.value.status_code == 401  # type: ignore[attr-defined]
    with Client(env_token_server.url, token="tok-1") as c:
        resp = c.get_online_features(["user_profile:age"], entities={"user_id": [1]})
        assert resp.values == {"age": [30]}


def test_importing_the_client_loads_no_http_library() -> None:
    code = (
        "import sys, featurestore._client, featurestore.server, featurestore.server._run\n"
        "heavy = ['httpx', 'fastapi', 'uvicorn', 'starlette', 'prometheus_client']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_every_dtype_survives_the_json_round_trip() -> None:
    columns: dict[str, tuple[pl.DataType, list[Any]]] = {
        "i8": (pl.Int8(), [-3, None]),
        "u64": (pl.UInt64(), [2**64 - 1, 0]),
        "f32": (pl.Float32(), [0.5, None]),
        "f64": (pl.Float64(), [1e-300, -2.5]),
        "flag": (pl.Boolean(), [True, None]),
        "name": (pl.String(), ['é"x', ""]),
        "day": (pl.Date(), [dt.date(1970, 1, 1), None]),
        "naive": (pl.Datetime("us"), [dt.datetime(2024, 2, 29, 23, 59, 59, 999_999), None]),
        "aware": (pl.Datetime("us", "UTC"), [dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None]),
    }
    original = OnlineResponse(
        entities={"user_id": [1, 2]},
        refs={c: f"v:{c}" for c in columns},
        values={c: v for c, (_, v) in columns.items()},
        statuses={c: [FeatureStatus.PRESENT, FeatureStatus.NOT_FOUND] for c in columns},
        dtypes={c: d for c, (d, _) in columns.items()},
        fingerprints={f"v:{c}": f"fp{i}" for i, c in enumerate(columns)},
        request_time=dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC),
    )
    decoded = decode_response(encode_response(original, "rid"))
    assert decoded == original
    assert decoded.to_polars(include_statuses=True).equals(
        original.to_polars(include_statuses=True)
    )
