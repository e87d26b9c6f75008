"""The server process: SIGTERM under load loses no served request from the serving log; SIGKILL
loses at most the records of the last flush interval, never a written file, and a restarted
server serves again; several workers share their Prometheus metrics; the ``serve`` verb's
options and errors."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from featurestore.cli._main import main
from featurestore.serving._serving_log import read_serving_log

from .conftest import build_repo, running_server, served_by_worker

GUARD = 60.0  # seconds a wait may take before the test fails instead of hanging
BODY = {
    "feature_service": "risk_model",
    "entities": {"user_id": [1], "merchant_id": ["m1"]},
    "request_data": {"amount": [60.0], "txn_date": ["2024-03-01"]},
}


def test_sigterm_under_load_loses_no_logged_request(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "repo", "serving_log: {flush_interval_seconds: 30}\n")
    served: list[str] = []  # request ids answered with 200
    failures: list[str] = []
    answered = threading.Condition()
    stop = threading.Event()

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                try:
                    resp = client.post("/v1/online-features", json=BODY)
                except httpx.HTTPError:
                    return  # the server closed the connection: it is shutting down
                with answered:
                    if resp.status_code == 200:
                        served.append(resp.headers["x-request-id"])
                    else:
                        failures.append(resp.text)
                    answered.notify_all()

    with running_server(repo) as server:
        threads = [threading.Thread(target=load, args=(server.url,)) for _ in range(6)]
        for t in threads:
            t.start()
        with answered:  # the load runs: enough answers, and the threads keep sending
            assert answered.wait_for(lambda: len(served) > 200 or failures, GUARD), served
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        log = server.log()
    assert code in (0, -signal.SIGTERM), log
    assert not failures
    logged = read_serving_log(repo / ".featurestore" / "logs")
    # the flush interval (30 s) outlasts the test: only the shutdown can have written these
    assert logged.height == len(served)
    assert sorted(logged["request_id"].to_list()) == sorted(served)
    assert "serving log closed" in log or "Application shutdown complete" in log


def test_sigkill_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "repo", "serving_log: {flush_interval_seconds: 0.2}\n")
    logs = repo / ".featurestore" / "logs"
    with running_server(repo) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            early = [client.post("/v1/online-features", json=BODY) for _ in range(20)]
            ids = {r.headers["x-request-id"] for r in early}
            deadline = time.monotonic() + GUARD  # the writer's flush interval puts them on disk
            while not ids <= set(read_serving_log(logs)["request_id"].to_list()):
                assert time.monotonic() < deadline, "the early requests never reached the log"
                time.sleep(0.05)
            late = [client.post("/v1/online-features", json=BODY) for _ in range(5)]
        server.process.kill()
        assert server.process.wait(timeout=30) == -signal.SIGKILL
    assert all(r.status_code == 200 for r in [*early, *late])
    logged = set(read_serving_log(logs)["request_id"].to_list())
    assert {r.headers["x-request-id"] for r in early} <= logged
    assert logged <= {r.headers["x-request-id"] for r in [*early, *late]}
    visible = [p for p in logs.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert all(p.suffix == ".parquet" for p in visible)  # no half-written file in sight
    with running_server(repo) as again, httpx.Client(base_url=again.url, timeout=10) as client:
        resp = client.post("/v1/online-features", json=BODY)
        assert resp.status_code == 200, resp.text


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_workers_share_their_metrics(tmp_path: Path) -> None:
    repo = build_repo(tmp_path / "repo")
    samples = repo / ".featurestore" / "prometheus"
    requests = 0
    with running_server(repo, "--workers", "2") as server:
        # new connections until both workers have served some (the kernel picks the worker)
        while requests < 20 or sum(n > 0 for n in served_by_worker(samples, tmp_path).values()) < 2:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert client.post("/v1/online-features", json=BODY).status_code == 200
            requests += 1
            assert requests < 500, "one worker served every request"
        scrapes = []
        for _ in range(4):
            with httpx.Client(base_url=server.url, timeout=10) as client:
                scrapes.append(client.get("/metrics").text)
    for text in scrapes:  # whichever worker answers, it reports every worker's requests
        endpoint = {"endpoint": "/v1/online-features", "status": "200"}
        assert metric(text, "featurestore_http_requests_total", **endpoint) == requests
        n_txn = {"ref": "merchant_stats:n_txn", "status": "PRESENT"}
        assert metric(text, "featurestore_served_values_total", **n_txn) == requests
        assert metric(text, "featurestore_newest_value_age_seconds", view="user_profile") > 0
    assert "(2 worker(s), no auth)" in server.log()


def test_a_scrape_skips_a_sample_file_a_worker_is_still_creating(tmp_path: Path) -> None:
    """A new worker's sample file is empty until sized; reading it used to fail the scrape."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    from featurestore.server._metrics import _SettledFilesCollector

    written = MmapedDict(str(tmp_path / "counter_100.db"))
    key = mmap_key("jobs_total", "jobs_total", ["kind"], ["a"], "Jobs.")
    written.write_value(key, 3.0, 0.0)
    written.close()
    (tmp_path / "counter_200.db").touch()
    registry = CollectorRegistry()
    _SettledFilesCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("jobs_total", {"kind": "a"}) == 3.0


def test_serve_help_lists_its_options() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--repo", "--host", "--port", "--workers", "127.0.0.1", "6566"):
        assert option in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "0"], "Invalid value for '--port'"),
        (["--workers", "0"], "Invalid value for '--workers'"),
    ],
)
def test_serve_rejects_bad_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_serve_outside_a_repo_fails_with_the_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--repo", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "is not a feature repo" in result.output
