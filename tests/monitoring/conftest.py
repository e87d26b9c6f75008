"""Fixtures of the report tests: applied stores over the skew repo and over the causes repo."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.monitoring import skew_causes_repo, skew_repo


@pytest.fixture
def open_store(make_repo: Callable[..., Path]) -> Iterator[skew_repo.Stores]:
    """Applied stores over the skew repo, closed after the test."""
    stores = skew_repo.Stores(make_repo)
    yield stores
    stores.close()


@pytest.fixture
def open_causes_store(make_repo: Callable[..., Path]) -> Iterator[skew_causes_repo.Stores]:
    """Applied stores over the causes repo, closed after the test."""
    stores = skew_causes_repo.Stores(make_repo)
    yield stores
    stores.close()
