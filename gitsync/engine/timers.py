"""The runner's timers: time-outs, retry intervals, delayed triggers and kill graces, in one
heap that one thread keeps, under the runner's lock."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

WAKE_AT_LEAST = 0.5  # seconds: how often the thread looks whether it should stop


class Timer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False


class Timers:
    """Every method but ``keep`` is called with the lock held."""

    def __init__(self, lock: threading.Lock) -> None:
        self._wakeup = threading.Condition(lock)  # a new earliest timer, or closing
        self._heap: list[tuple[float, int, Timer]] = []
        self._dead = 0  # cancelled ones still in the heap
        self._sequence = itertools.count()

    def keep(self, done: Callable[[], bool]) -> None:
        """The timer thread: runs each timer's callback, under the lock, when it is due, until
        ``done()``."""
        with self._wakeup:
            while not done():
                now = time.monotonic()
                while self._heap and (self._heap[0][2].cancelled or self._heap[0][0] <= now):
                    _, _, timer = heapq.heappop(self._heap)
                    if timer.cancelled:
                        self._dead -= 1
                    else:
                        timer.callback()
                timeout = WAKE_AT_LEAST  # and at least that often, to notice the end of a shutdown
                if self._heap:
                    timeout = min(timeout, max(0.0, self._heap[0][0] - time.monotonic()))
                self._wakeup.wait(timeout)

    def after(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, callback)
        earliest = not self._heap or timer.when < self._heap[0][0]
        heapq.heappush(self._heap, (timer.when, next(self._sequence), timer))
        if earliest:
            self._wakeup.notify()
        return timer

    def drop(self, timer: Timer) -> None:
        """Cancel a timer; the heap is rebuilt when mostly cancelled ones (every task's
        time-out is cancelled when it ends, long before it would fire)."""
        if timer.cancelled:
            return
        timer.cancelled = True
        self._dead += 1
        if self._dead > 1024 and self._dead * 2 > len(self._heap):
            self._heap = [t for t in self._heap if not t[2].cancelled]
            heapq.heapify(self._heap)
            self._dead = 0

    def wake(self) -> None:
        """Let the thread look at ``done()`` now (closing)."""
        self._wakeup.notify_all()
