"""A running server follows apply: after an apply (made by another process) requests through a
feature service and through feature lists switch to the new fingerprints and on-demand values,
a changed plain feature is served under its old fingerprint with ``applied_fingerprint`` until
it is materialized, ``/readyz`` stays 200 with the new registry version and no request is
refused meanwhile; code edited but not applied makes ``/readyz`` 503 with the feature and the
fix while the old version keeps being served (and ``/metrics`` says the code does not match)
until the edit is reverted; ``POST /v1/admin/reload`` switches at once, behind the bearer token;
with two workers, both switch; a server started before the first apply serves it once made."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from conftest import USER, definitions, source, view, write_repo
from prometheus_client.parser import text_string_to_metric_families

from featurestore import FeatureStore
from featurestore._registry import RegistryState

from .conftest import Server, running_server, served_by_worker, server_env

SCALED = "txn_risk:scaled"
AGE = "user_profile:age"
AGE_PLUS = "user_profile:age_plus"
USERS = [1, 2]
AGES = [30, 45]
AMOUNTS = [10.0, 4.0]
SERVICE = {
    "feature_service": "risk_model",
    "entities": {"user_id": USERS},
    "request_data": {"amount": AMOUNTS},
}
FEATURES = {
    "features": [SCALED, AGE],
    "entities": {"user_id": USERS},
    "request_data": {"amount": AMOUNTS},
}
INTERVAL = 0.2
GUARD = 60.0  # seconds a wait may take before the test fails instead of hanging
TOKEN = "t0ken"
RUN_APPLY = "run 'featurestore apply'"


def repo_code(factor: int, plus: int = 1) -> str:
    """``txn_risk:scaled`` is amount * factor, ``user_profile:age_plus`` is age + plus."""
    return definitions(
        USER,
        view(
            "user_profile",
            source("users", "data/users.parquet", "updated_at"),
            owner='"risk-team"',
            features=[
                'Feature("age", pl.Int64)',
                f'Feature("age_plus", pl.Int64, expr=pl.col("age") + {plus})',
            ],
        ),
        'txn = RequestSource("txn", schema={"amount": pl.Float64})',
        f"""
        @on_demand_feature_view(sources=[txn, "user_profile:age"], schema={{"scaled": pl.Float64}})
        def txn_risk(df: pl.DataFrame) -> pl.DataFrame:
            return df.select((pl.col("amount") * {factor}).cast(pl.Float64).alias("scaled"))
        """,
        """
        risk_model = FeatureService(
            "risk_model", features=["user_profile:age", "user_profile:age_plus", "txn_risk:scaled"]
        )
        """,
        doc="Definitions of the follow-apply server repo.",
    )


def write(root: Path, interval: float) -> Path:
    """Write the repo (factor 2, plus 1) at ``root``, not applied."""
    users = pl.DataFrame(
        {"user_id": USERS, "updated_at": [dt.datetime(2024, 1, 1)] * 2, "age": AGES},
        schema_overrides={"updated_at": pl.Datetime("us")},
    )
    return write_repo(
        root,
        repo_code(2),
        config=f"project: follow\nserving: {{reload_interval_seconds: {interval}}}\n",
        data={"data/users.parquet": users},
    )


def build(root: Path, interval: float) -> RegistryState:
    """Write the repo (factor 2, plus 1) at ``root``, apply and materialize it."""
    return apply_code(write(root, interval), None, materialize=True)


def apply_code(root: Path, code: str | None, *, materialize: bool = False) -> RegistryState:
    """Write ``code`` (None: keep the code on disk) and apply it, as another process would."""
    if code is not None:
        (root / "definitions.py").write_text(code)
    store = FeatureStore(root)
    try:
        store.apply()
        if materialize:
            store.materialize(end=dt.datetime.now(dt.UTC))
        return store.registry.require()
    finally:
        store.close()


def materialize(root: Path) -> None:
    store = FeatureStore(root)
    try:
        store.materialize(end=dt.datetime.now(dt.UTC))
    finally:
        store.close()


def fp(state: RegistryState, ref: str) -> str:
    return state.features[ref].fingerprint


def features_of(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/v1/online-features", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["features"]


def assert_serves(features: dict[str, Any], state: RegistryState, factor: int) -> None:
    """On-demand values of ``factor`` under the fingerprints of ``state``."""
    scaled = features["scaled"]
    assert scaled["values"] == [a * factor for a in AMOUNTS]
    assert scaled["fingerprint"] == fp(state, SCALED)
    assert "applied_fingerprint" not in scaled
    assert features["age"]["values"] == AGES
    assert features["age"]["fingerprint"] == fp(state, AGE)


def assert_both_serve(client: httpx.Client, state: RegistryState, factor: int) -> None:
    for body in (SERVICE, FEATURES):
        assert_serves(features_of(client, body), state, factor)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = GUARD) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(0.05)


def serves_fingerprint(client: httpx.Client, body: dict[str, Any], expected: str) -> bool:
    return bool(features_of(client, body)["scaled"]["fingerprint"] == expected)


def metric(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return sample.value
    return None


class Watch:
    """Posts the feature service request in a thread until stopped; keeps the fingerprint of
    ``txn_risk:scaled`` of every answer, in order, and every non-200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.seen: list[str] = []
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stop.is_set():
                resp = client.post("/v1/online-features", json=SERVICE)
                if resp.status_code != 200:
                    self.failures.append(f"{resp.status_code} {resp.text}")
                else:
                    self.seen.append(resp.json()["features"]["scaled"]["fingerprint"])
                time.sleep(0.01)

    def __enter__(self) -> Watch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(20)


def test_the_server_follows_an_apply(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    v1 = build(root, INTERVAL)
    with running_server(root) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        assert_both_serve(client, v1, 2)
        assert features_of(client, SERVICE)["age_plus"]["values"] == [a + 1 for a in AGES]
        ready = client.get("/readyz")
        assert (ready.status_code, ready.json()["registry_version"]) == (200, 1)
        with Watch(server.url) as watch:
            wait_for(lambda: bool(watch.seen), "a first answer to the watch")  # before the apply
            v2 = apply_code(root, repo_code(3, plus=100))
            assert fp(v2, SCALED) != fp(v1, SCALED) and fp(v2, AGE_PLUS) != fp(v1, AGE_PLUS)
            wait_for(lambda: serves_fingerprint(client, SERVICE, fp(v2, SCALED)), "the switch")
            assert_both_serve(client, v2, 3)
            wait_for(lambda: watch.seen[-1] == fp(v2, SCALED), "the watch's switch")
            # readiness after the apply: 200 with the new version, and it stays so
            wait_for(lambda: client.get("/readyz").status_code == 200, "/readyz 200")
            for _ in range(5):
                ready = client.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json()["registry_version"] == 2
                assert ready.json()["applied_at"] == v2.applied_at.isoformat()
                time.sleep(INTERVAL / 2)
            assert client.get("/healthz").json()["registry_version"] == 2
            # the plain feature changed: its stored values keep their fingerprint until
            # materialized
            age_plus = features_of(client, SERVICE)["age_plus"]
            assert age_plus["values"] == [a + 1 for a in AGES]
            assert age_plus["fingerprint"] == fp(v1, AGE_PLUS)
            assert age_plus["applied_fingerprint"] == fp(v2, AGE_PLUS)
            materialize(root)
            wait_for(
                lambda: features_of(client, SERVICE)["age_plus"]["fingerprint"] == fp(v2, AGE_PLUS),
                "the materialized values",
            )
            age_plus = features_of(client, SERVICE)["age_plus"]
            assert age_plus["values"] == [a + 100 for a in AGES]
            assert "applied_fingerprint" not in age_plus
        assert not watch.failures, watch.failures[:3]  # never a 503, run apply or not
        # the watch's requests ran across the switch: version 1, then version 2 for good
        switch = watch.seen.index(fp(v2, SCALED))
        assert switch > 0
        assert set(watch.seen[:switch]) == {fp(v1, SCALED)}
        assert set(watch.seen[switch:]) == {fp(v2, SCALED)}


def test_code_edited_but_not_applied_makes_the_server_unready(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    v1 = build(root, INTERVAL)
    path = root / "definitions.py"
    applied_code = path.read_text()
    with running_server(root) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        path.write_text(repo_code(5))
        wait_for(lambda: client.get("/readyz").status_code == 503, "/readyz 503")
        ready = client.get("/readyz")
        assert ready.status_code == 503
        message = ready.json()["error"]["message"]
        assert "txn_risk:scaled" in message
        assert "apply the code on disk" in message and "restore the applied code" in message
        assert "registry version 1" in message
        # still serving the applied version
        assert_both_serve(client, v1, 2)
        metrics = client.get("/metrics").text
        assert "featurestore_registry_code_matches 0.0" in metrics
        assert metric(metrics, "featurestore_registry_version") == 1.0
        assert client.get("/healthz").json()["registry_version"] == 1
        path.write_text(applied_code)  # reverted
        wait_for(lambda: client.get("/readyz").status_code == 200, "/readyz 200 again")
        assert client.get("/readyz").json()["registry_version"] == 1
        assert metric(client.get("/metrics").text, "featurestore_registry_code_matches") == 1.0
        assert_both_serve(client, v1, 2)


def test_admin_reload_switches_at_once_behind_the_token(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    v1 = build(root, 0)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with (
        running_server(root, env=server_env(tokens=TOKEN)) as server,
        httpx.Client(base_url=server.url, timeout=10, headers=auth) as client,
        httpx.Client(base_url=server.url, timeout=10) as anonymous,
    ):
        assert_both_serve(client, v1, 2)
        v2 = apply_code(root, repo_code(3))
        time.sleep(0.6)  # an interval of 0 never looks on its own
        assert_both_serve(client, v1, 2)
        assert anonymous.post("/v1/admin/reload").status_code == 401
        assert_both_serve(client, v1, 2)
        resp = client.post("/v1/admin/reload")
        assert resp.status_code == 200, resp.text
        assert resp.json() == {
            "registry_version": 2,
            "applied_at": v2.applied_at.isoformat(),
            "switched": True,
            "code_matches": True,
            "problem": None,
        }
        assert_both_serve(client, v2, 3)
        again = client.post("/v1/admin/reload").json()
        assert (again["registry_version"], again["switched"], again["code_matches"]) == (
            2,
            False,
            True,
        )
        # an edit not applied: reported, not served
        (root / "definitions.py").write_text(repo_code(7))
        refused = client.post("/v1/admin/reload").json()
        assert (refused["registry_version"], refused["switched"], refused["code_matches"]) == (
            2,
            False,
            False,
        )
        assert "txn_risk:scaled" in refused["problem"]
        assert_both_serve(client, v2, 3)
        assert client.get("/readyz").status_code == 503


def post_new_connection(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    """A request on a new connection (the kernel picks the worker that accepts it)."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        return features_of(client, body)


AGE_SERVED = ("featurestore_served_values_total", {"ref": AGE, "status": "PRESENT"})


def answers_of_one_worker(
    server: Server, samples: Path, scratch: Path
) -> tuple[str, list[dict[str, Any]]]:
    """The answers to both request kinds on one new connection, and the worker that gave them
    (its served values are counted before it answers)."""
    before = served_by_worker(samples, scratch, AGE_SERVED)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        answers = [features_of(client, SERVICE), features_of(client, FEATURES)]
    after = served_by_worker(samples, scratch, AGE_SERVED)
    [pid] = [pid for pid, n in after.items() if n > before.get(pid, 0.0)]
    return pid, answers


def test_every_worker_switches(tmp_path: Path) -> None:
    """Each worker moves from version 1 to version 2 once, and never serves 1 again."""
    root = tmp_path / "repo"
    v1 = build(root, INTERVAL)
    samples = root / ".featurestore" / "prometheus"
    scratch = tmp_path / "scratch"
    with running_server(root, "--workers", "2") as server:
        requests = 0
        while requests < 10 or sum(n > 0 for n in served_by_worker(samples, scratch).values()) < 2:
            assert_serves(post_new_connection(server, SERVICE), v1, 2)
            requests += 1
            assert requests < 300, "one worker served every request"
        v2 = apply_code(root, repo_code(3))
        versions: dict[str, int] = {}  # per worker, the version of its last answer
        requests = 0
        while sorted(versions.values()) != [2, 2]:
            pid, answers = answers_of_one_worker(server, samples, scratch)
            for features in answers:
                version = 2 if features["scaled"]["fingerprint"] == fp(v2, SCALED) else 1
                assert version >= versions.get(pid, 1), f"worker {pid} went back to version 1"
                assert_serves(features, *((v2, 3) if version == 2 else (v1, 2)))
                versions[pid] = version
            requests += 1
            assert requests < 1000, f"versions by worker after {requests} requests: {versions}"
    assert "(2 worker(s), no auth)" in server.log()


def test_a_server_started_before_the_first_apply_follows_it(tmp_path: Path) -> None:
    root = write(tmp_path / "repo", INTERVAL)
    with running_server(root) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "nothing has been applied yet" in ready.json()["error"]["message"]
        v1 = apply_code(root, repo_code(3), materialize=True)  # edited, then applied

        def serves() -> bool:
            resp = client.post("/v1/online-features", json=SERVICE)
            assert resp.status_code in (200, 503), resp.text  # unready until it follows
            return resp.status_code == 200

        wait_for(serves, "serving the first apply")
        assert_both_serve(client, v1, 3)
        wait_for(lambda: client.get("/readyz").status_code == 200, "/readyz 200")
        assert client.get("/readyz").json()["registry_version"] == 1
