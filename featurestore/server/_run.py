"""Starting the feature server (``featurestore serve``): uvicorn over :func:`create_app`.

With one worker the app is built in this process. With several, uvicorn starts worker
processes that each build it through :func:`app_from_env` from the repo path in
``FEATURESTORE_REPO``, and Prometheus metrics switch to multiprocess mode under
``data_dir/prometheus`` (emptied at start) so that a scrape of any worker covers all of them.
SIGTERM and SIGINT shut down gracefully: in-flight requests finish, then the serving log is
flushed.
"""

from __future__ import annotations

import gc
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore._config import ServerConfig
from featurestore._store import FeatureStore
from featurestore.errors import FeatureStoreError

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["MULTIPROC_ENV", "REPO_ENV", "app_from_env", "serve", "server_url"]

log = logging.getLogger(__name__)

REPO_ENV = "FEATURESTORE_REPO"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
_SERVER_MODULES = {
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "prometheus_client": "prometheus-client",
}


def require_server_extra() -> None:
    """Fail with the install command if a package the server needs is missing."""
    missing = [pkg for mod, pkg in _SERVER_MODULES.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise FeatureStoreError(
            f"the feature server needs {', '.join(missing)}; install them with "
            "pip install 'featurestore[server]'"
        )


def server_url(host: str, port: int) -> str:
    """The base URL of a server bound to ``host`` and ``port``."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _freeze_heap() -> None:
    """Move every object alive after startup (modules, definitions, the app) out of the
    garbage collector's reach: full collections then scan only what requests create, which
    keeps their pauses short in a process that serves nothing else."""
    gc.collect()
    gc.freeze()


def app_from_env() -> FastAPI:
    """uvicorn's app factory in worker processes: the repo path comes from FEATURESTORE_REPO."""
    from featurestore.server._app import create_app

    repo = os.environ.get(REPO_ENV)
    if not repo:
        raise FeatureStoreError(
            f"{REPO_ENV} is not set; start the server with 'featurestore serve --repo DIR'"
        )
    app = create_app(FeatureStore(repo))
    _freeze_heap()
    return app


def _multiprocess_metrics(store: FeatureStore) -> None:
    """Point prometheus_client's multiprocess mode at an empty directory (unless the operator
    already set PROMETHEUS_MULTIPROC_DIR, which is then theirs to manage)."""
    if os.environ.get(MULTIPROC_ENV):
        return
    path = store.repo.data_dir / "prometheus"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def serve(
    repo: str | Path | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run the feature server until SIGTERM or SIGINT; unset options come from featurestore.yaml.

    ``announce`` receives the startup line (with the URL), which is also logged.
    """
    require_server_extra()
    import uvicorn

    from featurestore.server._auth import configured_tokens

    store = FeatureStore(repo)
    overrides = {"host": host, "port": port, "workers": workers}
    config = ServerConfig.model_validate(
        store.repo.config.server.model_dump()
        | {k: v for k, v in overrides.items() if v is not None}
    )
    url = server_url(config.host, config.port)
    auth = "bearer token required" if configured_tokens(config) else "no auth"
    line = (
        f"serving project {store.project!r} at {url} ({config.workers} worker(s), {auth}); "
        f"API docs at {url}/docs"
    )
    log.info(line)
    if announce is not None:
        announce(line)
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "access_log": False,  # per-request log lines cost latency; /metrics counts requests
        "timeout_graceful_shutdown": None,  # let in-flight requests finish
    }
    if config.workers == 1:
        from featurestore.server._app import create_app

        try:
            app = create_app(store, config)
            _freeze_heap()
            uvicorn.run(app, **options)
        finally:
            store.close()
        return
    os.environ[REPO_ENV] = str(Path(store.repo.root).resolve())
    _multiprocess_metrics(store)
    store.close()
    uvicorn.run(f"{__name__}:app_from_env", factory=True, workers=config.workers, **options)
