"""The store's flow instances and task instances: what a run writes as it goes."""

from __future__ import annotations

import itertools
from typing import Any

from gitsync.engine.store_db import Database
from gitsync.statuses import LIVE_CODES

_INSTANCE_SUMMARY = (
    "id, flow_id, org_id, flow_name, status, trigger_ms, trigger_time, start_time, end_time, "
    "timestamp, cal_dt, owner, do_as, type, if_pre, cancelled"
)


class InstanceTables(Database):
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
