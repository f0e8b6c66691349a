"""Fewer garbage collections while a bulk read makes objects that all live on.

Reading 1,000 workflows makes about 150,000 objects that live until the command ends (the
answers and the decoded workflows), and httpx leaves about 40 objects in reference cycles per
request. At Python's default thresholds (a young-generation collection every 700
allocations) the collector ran about 200 times during such a read, each time walking the
survivors again: 140-370 ms of a 1.6-2.3 s plan, on the thread that decodes the answers.
Collecting every 50,000 allocations keeps the cycles freed (memory stays bounded at any
scale) at a small part of that cost.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def collecting_rarely(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Raise the young generation's threshold to at least ``young`` for the block; the
    thresholds in force before are restored when the last of any overlapping blocks (nested,
    or in other threads) ends."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
        now = gc.get_threshold()
        gc.set_threshold(max(young, now[0]), *now[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
