"""featurestore's own ``ast.parse`` calls never overlap: CPython keeps the AST constructor's
depth counter per interpreter, and on some releases (3.11.7 among them) it can be left wrong,
breaking every later parse in the process (gh-106905); a serving process parses on its reload
watcher beside its request threads."""

from __future__ import annotations

import ast
import threading
from typing import Any

import pytest

from featurestore.definitions import _fingerprint
from featurestore.definitions._fingerprint import parse_python


def test_a_parse_waits_for_the_one_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ast.parse
    inside, release = threading.Event(), threading.Event()
    entered: list[str] = []

    def held(*args: Any, **kwargs: Any) -> Any:
        name = threading.current_thread().name
        if name in ("first", "second"):  # not pytest's own parses
            entered.append(name)
            if name == "first":  # stays inside until released
                inside.set()
                release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(_fingerprint.ast, "parse", held)
    first = threading.Thread(target=parse_python, args=("x = 1",), name="first")
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=parse_python, args=("y = 2",), name="second")
    second.start()
    second.join(0.3)  # time to enter, were it not waiting
    assert second.is_alive() and entered == ["first"]
    release.set()
    first.join(10)
    second.join(10)
    assert entered == ["first", "second"]
