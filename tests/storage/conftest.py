"""Storage and Mongo tests talk to loopback servers only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.netguard import install_loopback_guard, remove_loopback_guard


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    """Refuse every non-loopback connection for the duration of each test."""
    install_loopback_guard()
    yield
    remove_loopback_guard()
