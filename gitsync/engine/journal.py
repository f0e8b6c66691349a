"""The runner's status writes, batched: one thread commits whatever piled up in a short
window (``WINDOW``, cut short by ``hurry`` or ``flush``) in one transaction, in order. A run of
many short tasks then costs a few transactions, not several per task; order is kept, so an
instance's final status is never stored before its tasks'."""

from __future__ import annotations

import queue
import threading
from typing import Any

from gitsync.engine.store import Store

WINDOW = 0.01

Update = tuple[str, str, dict[str, Any]]  # ("task" | "instance", id, values)


class Journal:
    def __init__(self, store: Store) -> None:
        self.store = store
        # updates, and flush markers: an Event set once everything before it is stored
        self._queue: queue.SimpleQueue[Update | threading.Event | None] = queue.SimpleQueue()
        self._hurry = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gitsync-journal", daemon=True)
        self._thread.start()

    def task(self, task_instance_id: str, **values: Any) -> None:
        self._queue.put(("task", task_instance_id, values))

    def instance(self, instance_id: str, **values: Any) -> None:
        self._queue.put(("instance", instance_id, values))

    def hurry(self) -> None:
        """Write what is queued now, without waiting for it."""
        self._hurry.set()

    def flush(self, timeout: float = 30) -> None:
        """Wait until everything put so far is stored."""
        if not self._thread.is_alive():
            return
        stored = threading.Event()
        self._queue.put(stored)
        self._hurry.set()
        stored.wait(timeout)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._hurry.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            self._hurry.wait(WINDOW)  # let a burst of updates pile up into one transaction
            self._hurry.clear()
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            updates = [b for b in batch if isinstance(b, tuple)]
            try:
                if updates:
                    self.store.write_batch(updates)
            finally:  # no flush waits forever, even if the store failed
                for item in batch:
                    if isinstance(item, threading.Event):
                        item.set()
            if None in batch:
                return
