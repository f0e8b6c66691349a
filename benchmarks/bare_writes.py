"""The bare loop of benchmarks/apply.py: httpx and nothing else, 8 requests at a time.

Run as a command of its own by apply.py: python benchmarks/bare_writes.py URL WORK.json
(WORK: {"kind": "create", "flows": [...]} or {"kind": "update", "bodies": {...}, "desc": ...},
and "extensions": whether the engine's are on). It sends what `gitsync apply` sends, bodies
built beforehand: the lock, List Workflow Directories, the reads of each flow (Export and Get
Flow from a strict engine, as from EnOS; Export alone with the extensions on), the writes,
the lock's Delete.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

CONCURRENCY = 8
ORG, USER = "o_local", "u_local"
BASE = "/batch-processing-service/v2.1"
ROOT = "gitsync"


class Bare:
    """httpx and nothing else: the requests, 8 at a time, bodies prepared by the caller."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY * 2)
        )
        self.query = {"userId": USER, "orgId": ORG}

    def get(self, resource: str, action: str, **query: Any) -> Any:
        params = {**self.query, "action": action, **{k: str(v) for k, v in query.items()}}
        answer = self.http.get(f"{BASE}/{resource}", params=params).json()
        assert answer["code"] == 0, answer
        return answer["data"]

    def post(self, resource: str, action: str, body: Any) -> Any:
        answer = self.http.post(
            f"{BASE}/{resource}",
            params={**self.query, "action": action},
            content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json;charset=UTF-8"},
        ).json()
        assert answer["code"] == 0, answer
        return answer["data"]

    def many(self, work: Callable[[Any], object], items: list[Any]) -> None:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(work, items))

    def tree(self) -> tuple[dict[tuple[str, ...], str], dict[str, int]]:
        """Every directory by path, and the flows under the owned root by name."""
        dirs: dict[tuple[str, ...], str] = {}
        flows: dict[str, int] = {}
        stack = [(self.get("directories", "listWorkFlowDirs")[0], ())]
        while stack:
            node, path = stack.pop()
            dirs[path] = node["key"]
            for child in node.get("children") or []:
                if child["isDirectory"]:
                    stack.append((child, (*path, child["title"])))
                elif path[:1] == (ROOT,):
                    flows[child["title"]] = int(child["key"])
        return dirs, flows

    def close(self) -> None:
        self.http.close()


def loop_create(bare: Bare, flows: list[dict[str, Any]]) -> None:
    """Directories level by level, then each flow's Import and Enable, 8 flows at a time."""
    dirs, _ = bare.tree()
    wanted = {(ROOT, *f["directory"][:i]) for f in flows for i in range(len(f["directory"]) + 1)}
    for depth in sorted({len(p) for p in wanted}):
        level = sorted(p for p in wanted if len(p) == depth and p not in dirs)

        def mkdir(path: tuple[str, ...]) -> None:
            body = {"parentId": dirs[path[:-1]], "dirName": path[-1]}
            dirs[path] = bare.post("directories", "create", body)["dirId"]

        bare.many(mkdir, level)

    def create(flow: dict[str, Any]) -> None:
        body = {
            "flowName": flow["name"],
            "dirId": dirs[(ROOT, *flow["directory"])],
            "desc": flow["json"]["desc"],
            "flowJson": flow["json"],
        }
        flow_id = bare.post("flows", "import", body)["flowId"]
        bare.post("flows", "enable", {"flowId": flow_id})

    bare.many(create, flows)


def loop_update(bare: Bare, bodies: dict[str, dict[str, Any]], desc: str) -> None:
    """Each flow's Load For Edit, then its Save with a body built beforehand."""

    def update(body: dict[str, Any]) -> None:
        bare.get("flows", "loadForEdit", flowId=body["id"])
        bare.post("flows", "save", {**body, "desc": desc})

    bare.many(update, list(bodies.values()))


def loop_command(url: str, work_file: Path) -> None:
    """What `gitsync apply` sends, with nothing else: lock, read, the writes, unlock."""
    work = json.loads(work_file.read_text())
    bare = Bare(url)
    try:
        dirs, _ = bare.tree()
        root = (
            dirs.get((ROOT,))
            or bare.post("directories", "create", {"parentId": dirs[()], "dirName": ROOT})["dirId"]
        )
        lock = bare.post("flows", "import", {"flowName": "__lock", "dirId": root, "flowJson": LOCK})
        _, flows = bare.tree()
        reads = ("export",) if work.get("extensions") else ("export", "get")
        bare.many(
            lambda i: [bare.get("flows", action, flowId=i) for action in reads],
            list(flows.values()),
        )
        if work["kind"] == "create":
            loop_create(bare, work["flows"])
        else:
            loop_update(bare, work["bodies"], work["desc"])
        bare.get("flows", "delete", flowId=lock["flowId"])
    finally:
        bare.close()


LOCK = {  # what gitsync's lock imports (remote.acquire_lock)
    "cycle": "D",
    "cron": "",
    "type": 0,
    "tasks": [],
    "relations": [],
    "flowLinks": [],
    "taskLinks": [],
    "linkRelations": [],
    "parameters": "[]",
    "owners": "",
    "visitors": "",
    "alertMode": 0,
    "syncType": 1,
    "startTime": "1970-01-01",
    "desc": "lock",
}


if __name__ == "__main__":
    loop_command(sys.argv[1], Path(sys.argv[2]))
