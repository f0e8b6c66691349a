"""The runner's status writes, batched: one thread commits whatever piled up in a short
window (``WINDOW``, cut short by ``flush``) in one transaction, in order. A run of many short
tasks then costs a few transactions, not several per task; order is kept, so an instance's
final status is never stored before its tasks'."""

from __future__ import annotations

import queue
import threading
from typing import Any

from gitsync.engine.store import Store

WINDOW = 0.01

_STOP: tuple[str, str, dict[str, Any]] = ("stop", "", {})


class Journal:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[tuple[str, str, dict[str, Any]]] = queue.SimpleQueue()
        self._written = threading.Condition()
        self._sent = 0
        self._done = 0
        self._hurry = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gitsync-journal", daemon=True)
        self._thread.start()

    def task(self, task_instance_id: str, **values: Any) -> None:
        self._put(("task", task_instance_id, values))

    def instance(self, instance_id: str, **values: Any) -> None:
        self._put(("instance", instance_id, values))

    def _put(self, item: tuple[str, str, dict[str, Any]]) -> None:
        with self._written:
            self._sent += 1
        self._queue.put(item)

    def hurry(self) -> None:
        """Write what is queued now, without waiting for it."""
        self._hurry.set()

    def flush(self, timeout: float = 30) -> None:
        """Wait until everything put so far is stored."""
        with self._written:
            target = self._sent
            if self._done >= target:
                return
            self._hurry.set()
            self._written.wait_for(lambda: self._done >= target, timeout)

    def close(self) -> None:
        self.flush()
        self._hurry.set()
        self._queue.put(_STOP)
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
            stop = _STOP in batch
            items = [b for b in batch if b != _STOP]
            if items:
                self.store.write_batch(items)
            with self._written:
                self._done += len(items)
                self._written.notify_all()
            if stop:
                return
