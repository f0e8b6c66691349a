"""The store's organizations, their users and their directories."""

from __future__ import annotations

import secrets
import sqlite3

from gitsync.engine.store_db import Database


def new_dir_id() -> str:
    return secrets.token_hex(16)


class OrgTables(Database):
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
