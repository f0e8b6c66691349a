"""The store's schema, versioned in ``meta`` and migrated forward on open.

A column that only adds to a table (``_ADDED``) is added where missing without a new version,
so an older gitsync still opens the store and ignores it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_VERSION = 2

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


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the store at ``path`` to ``SCHEMA_VERSION``, inside the caller's transaction."""
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
    version = 0
    if exists:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row["value"]) if row else 0
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"{path}: store schema {version} is newer than this gitsync ({SCHEMA_VERSION})"
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
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
