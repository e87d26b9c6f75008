"""A ``featurestore serve`` process for the demo's HTTP steps: started on a free loopback
port, ready once /healthz answers, stopped with SIGTERM (killed if it does not stop)."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from featurestore.server._launch import LOOPBACK, wait_until_healthy

__all__ = ["demo_server"]

SERVER_START_SECONDS = 60.0  # bound on the wait for the demo server's /healthz
SERVER_STOP_SECONDS = 30.0  # bound on its graceful shutdown before it is killed


def _output_tail(output: IO[bytes], lines: int = 20) -> str:
    output.seek(0)
    text = output.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then a bounded wait for the graceful shutdown; SIGKILL after it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=SERVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def demo_server(repo: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``featurestore serve`` on ``port`` of the loopback interface, ready once /healthz answers
    (bounded wait); stopped with SIGTERM on exit, killed if it does not stop in time."""
    with tempfile.TemporaryFile() as output:
        command = [sys.executable, "-m", "featurestore.cli", "serve", "--repo", str(repo)]
        process = subprocess.Popen(
            [*command, "--host", LOOPBACK, "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_until_healthy(
                process, port, SERVER_START_SECONDS, output=lambda: _output_tail(output)
            )
            yield process
        finally:
            _stop(process)
