"""SQLite persistence for the reference engine: identities, directories, flows, tasks.

One connection guarded by a lock: every public method is one transaction, so concurrent
requests from uvicorn's thread pool never interleave a write. WAL keeps readers cheap. The
schema is versioned in ``meta`` and migrated forward on open; a column that only adds to a
table (``_ADDED``) is added where missing without a new version, so an older gitsync still
opens the store and ignores it.
"""

from __future__ import annotations

import itertools
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitsync.protocol import LIVE_CODES

SCHEMA_VERSION = 2
FIRST_FLOW_ID = 1000
FIRST_TASK_ID = 100000

_SCHEMA = [
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE orgs (id TEXT PRIMARY KEY, root_dir TEXT NOT NULL, do_as TEXT NOT NULL)""",
    """CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL,
                           locked INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE members (org_id TEXT NOT NULL, user_id TEXT NOT NULL,
                             PRIMARY KEY (org_id, user_id))""",
    """CREATE TABLE directories (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, parent_id TEXT,
                                 name TEXT NOT NULL, created INTEGER NOT NULL,
                                 UNIQUE (org_id, parent_id, name))""",
    """CREATE TABLE flows (id INTEGER PRIMARY KEY, org_id TEXT NOT NULL, dir_id TEXT NOT NULL,
                           name TEXT NOT NULL, definition TEXT NOT NULL,
                           active INTEGER NOT NULL DEFAULT 0, entry INTEGER NOT NULL DEFAULT 1,
                           creator TEXT NOT NULL, create_time TEXT NOT NULL,
                           update_user TEXT NOT NULL, update_time TEXT NOT NULL,
                           locked INTEGER NOT NULL DEFAULT 0, queue TEXT NOT NULL DEFAULT '',
                           UNIQUE (org_id, name))""",
    """CREATE TABLE tasks (id INTEGER PRIMARY KEY, flow_id INTEGER NOT NULL, name TEXT NOT NULL,
                           position INTEGER NOT NULL, x REAL NOT NULL, y REAL NOT NULL,
                           UNIQUE (flow_id, name))""",
    """CREATE INDEX flows_by_dir ON flows (dir_id)""",
    """CREATE INDEX tasks_by_flow ON tasks (flow_id)""",
]

# Version 2: runs. An instance keeps a snapshot of its flow, so a Save while it runs does not
# change it; logs are files beside the store, so they survive a crash as far as written.
_SCHEMA_V2 = [
    """CREATE TABLE flow_instances (
        id TEXT PRIMARY KEY, flow_id INTEGER NOT NULL, org_id TEXT NOT NULL,
        flow_name TEXT NOT NULL, snapshot TEXT NOT NULL, parameters TEXT NOT NULL,
        status INTEGER NOT NULL, trigger_ms INTEGER NOT NULL, trigger_time TEXT NOT NULL,
        start_time TEXT NOT NULL DEFAULT '', end_time TEXT NOT NULL DEFAULT '',
        timestamp TEXT NOT NULL, cal_dt TEXT NOT NULL, owner TEXT NOT NULL,
        do_as TEXT NOT NULL, type INTEGER NOT NULL, if_pre INTEGER NOT NULL,
        cancelled INTEGER NOT NULL DEFAULT 0, graph TEXT NOT NULL)""",
    """CREATE TABLE task_instances (
        id TEXT PRIMARY KEY, flow_instance_id TEXT NOT NULL, task_id INTEGER NOT NULL,
        task_name TEXT NOT NULL, position INTEGER NOT NULL, status INTEGER NOT NULL,
        run_num INTEGER NOT NULL DEFAULT 0, recall_num INTEGER NOT NULL DEFAULT 0,
        start_time TEXT NOT NULL DEFAULT '', end_time TEXT NOT NULL DEFAULT '',
        is_timeout INTEGER NOT NULL DEFAULT 0, cmd TEXT NOT NULL DEFAULT '',
        pid INTEGER NOT NULL DEFAULT 0)""",
    """CREATE INDEX instances_by_flow ON flow_instances (flow_id, status)""",
    """CREATE INDEX task_instances_by_flow ON task_instances (flow_instance_id)""",
]

# (table, column, definition): what leftovers.py needs to tell a task's leader from a process
# that got its pid later
_ADDED = [("task_instances", "born", "TEXT NOT NULL DEFAULT ''")]

_INSTANCE_SUMMARY = (
    "id, flow_id, org_id, flow_name, status, trigger_ms, trigger_time, start_time, end_time, "
    "timestamp, cal_dt, owner, do_as, type, if_pre, cancelled"
)


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


def new_dir_id() -> str:
    return secrets.token_hex(16)


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit: everything inside commits together or not at all. Re-entrant, so
        a caller can wrap its checks and the writes they guard in one transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self.transaction() as db:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            version = 0
            if exists:
                row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row["value"]) if row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path}: store schema {version} is newer than this "
                    f"gitsync ({SCHEMA_VERSION})"
                )
            if version == 0:
                for statement in _SCHEMA:
                    db.execute(statement)
            if version < 2:
                for statement in _SCHEMA_V2:
                    db.execute(statement)
            for table, column, definition in _ADDED:
                columns = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in columns:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    # -- identities --------------------------------------------------------------------------

    def ensure_org(self, org_id: str, do_as: str | None = None) -> str:
        """Create the org with its root 'Workflow' directory if new; returns the root id."""
        with self.transaction() as db:
            row = db.execute("SELECT root_dir FROM orgs WHERE id=?", (org_id,)).fetchone()
            if row:
                return str(row["root_dir"])
            root = new_dir_id()
            db.execute(
                "INSERT INTO orgs VALUES (?, ?, ?)", (org_id, root, do_as or f"data_{org_id}")
            )
            db.execute("INSERT INTO directories VALUES (?, ?, NULL, 'Workflow', 0)", (root, org_id))
            return root

    def ensure_user(self, user_id: str, name: str, org_id: str, locked: bool = False) -> None:
        self.ensure_org(org_id)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO users VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "name=excluded.name, locked=excluded.locked",
                (user_id, name, int(locked)),
            )
            db.execute("INSERT OR IGNORE INTO members VALUES (?, ?)", (org_id, user_id))

    def user(self, user_id: str) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT * FROM users WHERE id=?", (user_id,)
            ).fetchone()
            return row

    def is_member(self, org_id: str, user_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM members WHERE org_id=? AND user_id=?", (org_id, user_id)
                ).fetchone()
                is not None
            )

    def orgs(self) -> list[dict[str, str]]:
        with self._lock:
            return [dict(r) for r in self._db.execute("SELECT * FROM orgs")]

    def org(self, org_id: str) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT * FROM orgs WHERE id=?", (org_id,)
            ).fetchone()
            return row

    # -- directories ---------------------------------------------------------------------------

    def directories(self, org_id: str) -> list[sqlite3.Row]:
        with self._lock:
            return list(
                self._db.execute(
                    "SELECT * FROM directories WHERE org_id=? ORDER BY created, name", (org_id,)
                )
            )

    def directory(self, org_id: str, dir_id: str) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT * FROM directories WHERE org_id=? AND id=?", (org_id, dir_id)
            ).fetchone()
            return row

    def create_directory(self, org_id: str, parent_id: str, name: str) -> str | None:
        """The new directory's id, or None when the parent already has one of that name."""
        with self.transaction() as db:
            clash = db.execute(
                "SELECT 1 FROM directories WHERE org_id=? AND parent_id=? AND name=?",
                (org_id, parent_id, name),
            ).fetchone()
            if clash:
                return None
            dir_id = new_dir_id()
            count = db.execute("SELECT COUNT(*) FROM directories").fetchone()[0]
            db.execute(
                "INSERT INTO directories VALUES (?, ?, ?, ?, ?)",
                (dir_id, org_id, parent_id, name, int(count)),
            )
            return dir_id

    # -- flows -----------------------------------------------------------------------------------

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
                    round(0.002 + 0.01 * (i % 8), 4),
                    round(0.002 + 0.01 * (i // 8), 4),
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

    # -- instances -------------------------------------------------------------------------

    def insert_instance(self, row: dict[str, Any], tasks: list[dict[str, Any]]) -> None:
        with self.transaction() as db:
            columns = ", ".join(row)
            db.execute(
                f"INSERT INTO flow_instances ({columns}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )
            if tasks:  # all with the same keys
                db.executemany(
                    f"INSERT INTO task_instances ({', '.join(tasks[0])}) VALUES "
                    f"({', '.join('?' * len(tasks[0]))})",
                    [tuple(task.values()) for task in tasks],
                )

    def instance_exists(self, instance_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM flow_instances WHERE id=?", (instance_id,)
                ).fetchone()
                is not None
            )

    def instance(self, org_id: str, instance_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM flow_instances WHERE org_id=? AND id=?", (org_id, instance_id)
            ).fetchone()
            return dict(row) if row else None

    def instances(self, org_id: str) -> list[dict[str, Any]]:
        """The organization's instances without their big columns (the flow snapshot, the
        graph, the parameters): enough to filter, sort and page; ``instance`` has the rest."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_INSTANCE_SUMMARY} FROM flow_instances WHERE org_id=? "
                "ORDER BY trigger_ms, id",
                (org_id,),
            )
            return [dict(r) for r in rows]

    def unfinished_instances(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM flow_instances WHERE status IN ({LIVE_CODES})"
                " ORDER BY trigger_ms, id"
            )
            return [dict(r) for r in rows]

    def task_instances(self, instance_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM task_instances WHERE flow_instance_id=? ORDER BY position",
                (instance_id,),
            )
            return [dict(r) for r in rows]

    def task_statuses(self, instance_id: str) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT task_name, status FROM task_instances WHERE flow_instance_id=?",
                (instance_id,),
            )
            return {name: status for name, status in rows}

    def task_instance(self, task_instance_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM task_instances WHERE id=?", (task_instance_id,)
            ).fetchone()
            return dict(row) if row else None

    def update_instance(self, instance_id: str, **values: Any) -> None:
        with self.transaction() as db:
            sets = ", ".join(f"{k}=?" for k in values)
            db.execute(
                f"UPDATE flow_instances SET {sets} WHERE id=?", (*values.values(), instance_id)
            )

    def update_tasks(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        """Several task-instance updates in one transaction (the runner batches them)."""
        with self.transaction() as db:
            for task_instance_id, values in updates:
                sets = ", ".join(f"{k}=?" for k in values)
                db.execute(
                    f"UPDATE task_instances SET {sets} WHERE id=?",
                    (*values.values(), task_instance_id),
                )

    def write_batch(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """("task" | "instance", id, values) updates, in one transaction. Updates of the same
        row are merged first (a short task's RUNNING and SUCCESS become one UPDATE; the later
        values win, as applying them in order would), then a run of updates of the same
        columns is one executemany."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for kind, key, values in items:
            row = merged.get((kind, key))
            if row is None:
                merged[(kind, key)] = dict(values)
            else:
                row.update(values)
        with self.transaction() as db:
            for (kind, columns), group in itertools.groupby(
                merged.items(), key=lambda item: (item[0][0], tuple(item[1]))
            ):
                table = "task_instances" if kind == "task" else "flow_instances"
                sets = ", ".join(f"{k}=?" for k in columns)
                db.executemany(
                    f"UPDATE {table} SET {sets} WHERE id=?",
                    [(*values.values(), key) for (_, key), values in group],
                )

    def delete_instances(self, flow_id: int) -> list[str]:
        with self.transaction() as db:
            ids = [
                r[0]
                for r in db.execute("SELECT id FROM flow_instances WHERE flow_id=?", (flow_id,))
            ]
            db.execute(
                "DELETE FROM task_instances WHERE flow_instance_id IN "
                "(SELECT id FROM flow_instances WHERE flow_id=?)",
                (flow_id,),
            )
            db.execute("DELETE FROM flow_instances WHERE flow_id=?", (flow_id,))
            return ids
