"""A redis-server of a test's own, on a free port: for tests that stop, pause or restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from featurestore.server._launch import free_port

__all__ = ["RedisProcess", "free_port"]


class RedisProcess:
    """A redis-server of this test alone, on a free port, saving to ``directory`` on stop."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the process keeps it
        settings = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": str(self.directory),
            "save": "3600 1",
            "appendonly": "no",
        }
        args = [x for name, value in settings.items() for x in (f"--{name}", value)]
        self.process = subprocess.Popen(
            ["redis-server", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            "redis-server did not start: "
                            + (self.directory / "redis.log").read_text(errors="replace")
                        ) from None
                    time.sleep(0.02)
        finally:
            client.close()

    @property
    def pid(self) -> int:
        assert self.process is not None, "the redis-server is not running"
        return self.process.pid

    def pause(self) -> None:
        """SIGSTOP: the server keeps its connections open and answers nothing (a hung store)."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM: Redis saves its data (a save point is configured) and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
