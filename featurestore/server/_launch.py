"""Starting a feature server process and waiting for it: a free loopback port, and the bounded
wait for ``/healthz`` that the demo, the tests and the benchmarks share. No HTTP library:
the wait speaks plain HTTP/1.1 over a socket, so it works without the ``server`` extra."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

from featurestore.errors import FeatureStoreError

__all__ = ["LOOPBACK", "free_port", "healthz_status", "wait_until_healthy"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def healthz_status(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> int | None:
    """The status code of ``GET /healthz`` on ``host:port``, or None when nothing answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(
                f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            )
            head = sock.recv(64).decode("latin-1")
    except OSError:
        return None
    parts = head.split(" ", 2)
    return (
        int(parts[1])
        if len(parts) > 1 and parts[0].startswith("HTTP/") and parts[1].isdigit()
        else None
    )


def wait_until_healthy(
    process: subprocess.Popen[bytes],
    port: int,
    timeout: float,
    output: Callable[[], str] = lambda: "",
    host: str = LOOPBACK,
) -> None:
    """Return once ``/healthz`` answers 200; raise FeatureStoreError with ``output()`` (the
    process's last lines) if the process exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise FeatureStoreError(
                f"the feature server exited with code {process.returncode}:\n{output()}"
            )
        if healthz_status(port, host) == 200:
            return
        if time.monotonic() > deadline:
            raise FeatureStoreError(
                f"the feature server did not answer http://{host}:{port}/healthz within "
                f"{timeout:.0f} s:\n{output()}"
            )
        time.sleep(0.05)
