"""Fixtures for callbacks tests: no connection may leave loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config import netguard


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """Refuse every non-loopback connection for the duration of each test."""
    netguard.install_loopback_guard()
    yield
    netguard.remove_loopback_guard()
