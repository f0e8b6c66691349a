"""The store's flows and their tasks: what Import and Save write."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gitsync.codec import edit_view
from gitsync.engine.store_db import Database

FIRST_FLOW_ID = 1000
FIRST_TASK_ID = 100000


@dataclass(frozen=True)
class FlowRow:
    id: int
    org_id: str
    dir_id: str
    name: str
    definition: dict[str, Any]
    active: int
    entry: int
    creator: str
    create_time: str
    update_user: str
    update_time: str
    locked: bool
    queue: str
    definition_json: str = field(default="", repr=False, compare=False)  # as stored


@dataclass(frozen=True)
class TaskRow:
    id: int
    flow_id: int
    name: str
    position: int
    x: float
    y: float


class FlowTables(Database):
    @staticmethod
    def _flow(row: sqlite3.Row) -> FlowRow:
        values = dict(row)
        values["definition_json"] = values["definition"]
        values["definition"] = json.loads(values["definition"])
        values["locked"] = bool(values["locked"])
        return FlowRow(**values)

    def flows(self, org_id: str) -> list[FlowRow]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM flows WHERE org_id=? ORDER BY id", (org_id,))
            return [self._flow(r) for r in rows]

    def flows_containing(self, org_id: str, texts: Sequence[str]) -> list[FlowRow]:
        """The flows whose stored definition contains one of ``texts``: SQLite looks through
        the stored JSON, and only those flows' definitions are read (not every flow's)."""
        if not texts:
            return []
        where = " OR ".join("instr(definition, ?) > 0" for _ in texts)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM flows WHERE org_id=? AND ({where}) ORDER BY id", (org_id, *texts)
            )
            return [self._flow(r) for r in rows]

    def flow(self, org_id: str, flow_id: int) -> FlowRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM flows WHERE org_id=? AND id=?", (org_id, flow_id)
            ).fetchone()
            return self._flow(row) if row else None

    def flow_by_name(self, org_id: str, name: str) -> FlowRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM flows WHERE org_id=? AND name=?", (org_id, name)
            ).fetchone()
            return self._flow(row) if row else None

    def tasks(self, flow_id: int) -> list[TaskRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM tasks WHERE flow_id=? ORDER BY position", (flow_id,)
            )
            return [TaskRow(**dict(r)) for r in rows]

    def task(self, task_id: int) -> TaskRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM tasks WHERE id=?", (task_id,)).fetchone()
            return TaskRow(**dict(row)) if row else None

    def insert_flow(
        self,
        *,
        org_id: str,
        dir_id: str,
        name: str,
        definition: dict[str, Any],
        user: str,
        now: str,
        wished_id: int | None,
        task_names: list[str],
    ) -> int | None:
        """Store a new flow and its tasks; None when the name is taken in the org."""
        with self.transaction() as db:
            if db.execute(
                "SELECT 1 FROM flows WHERE org_id=? AND name=?", (org_id, name)
            ).fetchone():
                return None
            taken = (
                wished_id is not None
                and db.execute("SELECT 1 FROM flows WHERE id=?", (wished_id,)).fetchone()
                is not None
            )
            if wished_id is not None and wished_id > 0 and not taken:
                flow_id = wished_id
            else:
                top = db.execute("SELECT MAX(id) FROM flows").fetchone()[0]
                flow_id = max(FIRST_FLOW_ID, (top or 0) + 1)
            db.execute(
                "INSERT INTO flows (id, org_id, dir_id, name, definition, active, entry, "
                "creator, create_time, update_user, update_time) "
                "VALUES (?, ?, ?, ?, ?, 0, 1, ?, ?, ?, ?)",
                (flow_id, org_id, dir_id, name, json.dumps(definition), user, now, user, now),
            )
            self._insert_tasks(db, flow_id, task_names)
            return flow_id

    def _insert_tasks(self, db: sqlite3.Connection, flow_id: int, names: list[str]) -> None:
        top = db.execute("SELECT MAX(id) FROM tasks").fetchone()[0]
        next_id = max(FIRST_TASK_ID, (top or 0) + 1)
        for i, name in enumerate(names):
            db.execute(
                "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)",
                (
                    next_id + i,
                    flow_id,
                    name,
                    i,
                    *edit_view.task_position(i),
                ),
            )

    def update_flow(
        self,
        flow_id: int,
        *,
        name: str,
        definition: dict[str, Any],
        active: int,
        user: str,
        now: str,
        queue: str,
        tasks: list[tuple[int, str, float, float]],
    ) -> bool:
        """Overwrite a flow and keep only ``tasks`` (id, name, x, y) in that order.
        False when another flow of the org already has ``name``."""
        with self.transaction() as db:
            org = db.execute("SELECT org_id FROM flows WHERE id=?", (flow_id,)).fetchone()[0]
            if db.execute(
                "SELECT 1 FROM flows WHERE org_id=? AND name=? AND id<>?", (org, name, flow_id)
            ).fetchone():
                return False
            db.execute(
                "UPDATE flows SET name=?, definition=?, active=?, update_user=?, "
                "update_time=?, queue=? WHERE id=?",
                (name, json.dumps(definition), active, user, now, queue, flow_id),
            )
            keep = [t[0] for t in tasks]
            db.execute(
                f"DELETE FROM tasks WHERE flow_id=? AND id NOT IN ({','.join('?' * len(keep))})",
                (flow_id, *keep),
            )
            # names first out of the way (no task name has a NUL), so that renames that swap
            # or shift names are one change, as the unique (flow, name) sees it
            db.executemany("UPDATE tasks SET name=? WHERE id=?", [(f"\0{i}", i) for i in keep])
            for position, (task_id, task_name, x, y) in enumerate(tasks):
                db.execute(
                    "UPDATE tasks SET name=?, position=?, x=?, y=? WHERE id=?",
                    (task_name, position, x, y, task_id),
                )
            return True

    def set_active(self, flow_id: int, active: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE flows SET active=? WHERE id=?", (active, flow_id))

    def delete_flow(self, flow_id: int) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM tasks WHERE flow_id=?", (flow_id,))
            db.execute("DELETE FROM flows WHERE id=?", (flow_id,))
