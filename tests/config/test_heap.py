"""The start-up heap freeze: objects alive at start-up leave the collector's scans, and nothing else."""

from __future__ import annotations

import gc

import pytest

from config.heap import freeze_startup_objects


@pytest.fixture()
def unfrozen():
    """Leave the test process as it was: nothing frozen."""
    gc.unfreeze()
    yield
    gc.unfreeze()


class Cycle:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


def test_freezes_what_is_alive_and_still_collects_later_garbage(unfrozen) -> None:
    alive = Cycle()
    frozen = freeze_startup_objects()
    assert frozen == gc.get_freeze_count() > 0
    # Later cyclic garbage is still found and freed.
    Cycle()
    assert gc.collect() >= 1
    # The start-up object is in the permanent generation: the collector's generations no longer hold it.
    assert all(obj is not alive for obj in gc.get_objects())
