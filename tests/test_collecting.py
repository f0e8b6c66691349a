"""collecting_rarely raises the collector's young threshold and always puts it back."""

from __future__ import annotations

import gc
import threading

import pytest

from gitsync.collecting import collecting_rarely


@pytest.fixture(autouse=True)
def thresholds() -> object:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_raised_inside_and_restored_after_even_on_error() -> None:
    gc.set_threshold(700, 11, 12)
    with pytest.raises(KeyError), collecting_rarely(40_000):
        assert gc.get_threshold() == (40_000, 11, 12)
        raise KeyError("x")
    assert gc.get_threshold() == (700, 11, 12)


def test_never_lowers_a_higher_threshold() -> None:
    gc.set_threshold(90_000, 10, 10)
    with collecting_rarely(40_000):
        assert gc.get_threshold()[0] == 90_000
    assert gc.get_threshold() == (90_000, 10, 10)


def test_overlapping_threads_restore_once_the_last_one_ends() -> None:
    gc.set_threshold(700, 10, 10)
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with collecting_rarely(40_000):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    with collecting_rarely(40_000):
        thread.start()
        assert inside.wait(10)
    assert gc.get_threshold()[0] == 40_000  # the other thread is still reading
    release.set()
    thread.join(10)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_nested_block_may_raise_it_further_and_the_outer_one_restores() -> None:
    gc.set_threshold(700, 10, 10)
    with collecting_rarely(40_000):
        with collecting_rarely(500_000):
            assert gc.get_threshold()[0] == 500_000
        with collecting_rarely(1_000):
            assert gc.get_threshold()[0] >= 40_000
    assert gc.get_threshold() == (700, 10, 10)
