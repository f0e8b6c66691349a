"""`gitsync apply` at scale: 1,000 new workflows, then 1,000 updates, against a bare loop.

Run: .venv/bin/python benchmarks/apply.py [--flows 1000] [--tasks 10] [--repeat 3]
     .venv/bin/python benchmarks/apply.py --scale 10000 [--repeat 1]

The engine runs as its own process (`gitsync serve` on 127.0.0.1, a free port, its data on
tmpfs when /dev/shm is one), as a real service is remote. The workflows are periodic and
enabled, as users have them.

Default mode, alternating rounds, best of --repeat, each side at the same concurrency (8):

- **create**: 1,000 workflows of 10 tasks applied to an empty engine (a fresh one per
  measurement): `remote.apply` of the plan (Create Directory, Import, Enable) against a bare
  httpx loop sending the same requests 8 at a time, its bodies built before the clock
  starts (it creates the directories level by level, then imports and enables each flow).
- **update**: the description of all 1,000 changed: `remote.apply` (Load For Edit + Save
  each) against the loop sending Load For Edit and then a Save body built beforehand.
- The same two as commands: `gitsync apply --auto-approve` (validate the files, lock, read,
  plan, write, unlock) against the loop run as a Python command of its own that makes the
  same requests (lock, List Workflow Directories, Export of each flow, the writes, unlock).

Goal: apply <= 1.3x the loop.

--scale N: plan and apply of N workflows against 1,000, as commands: `gitsync apply` of N new
workflows to an empty engine (validation cache empty, as in CI), then `gitsync plan` with no
changes. Prints the wall times, the N/1,000 ratios (goal: <= 12x for 10,000) and the peak
resident memory of each gitsync process (wait4's ru_maxrss; goal: < 400 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from engine import default_dir
from plan import served, write_flows

from gitsync import config, remote, sync
from gitsync.client import Client
from gitsync.codec import edit_view, flow_struct, marker
from gitsync.model import Tree
from gitsync.plan import compute

CONCURRENCY = 8
ORG, USER = "o_local", "u_local"
BASE = "/batch-processing-service/v2.1"
ROOT = "gitsync"


# -- the bare loop -------------------------------------------------------------------------------


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
        bare.many(lambda i: bare.get("flows", "export", flowId=i), list(flows.values()))
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


# -- gitsync's side ------------------------------------------------------------------------------


def gitsync_apply(url: str, tree: Tree, kind: str) -> float:
    """``remote.apply`` of the plan from ``tree``, timed alone (read and plan are not)."""
    with Client(url, ORG, USER, max_concurrency=CONCURRENCY) as client:
        state = remote.read_state(client, (ROOT,))
        plan = compute(tree, state)
        kinds = {c.kind for c in plan.changes}
        assert kinds == ({"create_dir", "create_flow", "enable"} if kind == "create" else {kind})
        start = time.perf_counter()
        result = remote.apply(client, plan, state)
        took = time.perf_counter() - start
    assert not result.failed, result.failed[:3]
    return took


def save_bodies(url: str, tree: Tree) -> dict[str, dict[str, Any]]:
    """The Save body of each flow as gitsync would send it (built once, before any clock)."""
    with Client(url, ORG, USER) as client:
        state = remote.read_state(client, (ROOT,))
        ids = {f.workflow.name: f.id for f in state.flows}
        return {
            w.name: edit_view.save_body(
                w, edit_view.graph_from_detail(client.load_flow_for_edit(ids[w.name])), ids
            )
            for w in tree.workflows
        }


def described(tree: Tree, text: str) -> Tree:
    return Tree.of([replace(w, description=text) for w in tree.workflows])


# -- running it ----------------------------------------------------------------------------------


@dataclass
class Repo:
    path: Path
    tree: Tree
    flows: list[dict[str, Any]]  # what the loop imports: name, directory, Flow Struct

    def target(self, url: str) -> None:
        (self.path / "gitsync.yaml").write_text(
            f"targets:\n  bench:\n    url: {url}\n    root: {ROOT}\n"
            f"    org_id: {ORG}\n    user_id: {USER}\n    concurrency: {CONCURRENCY}\n"
        )

    def env(self) -> dict[str, str]:
        return {**os.environ, "GITSYNC_CACHE_DIR": str(self.path / "cache")}


def make_repo(where: Path, flows: int, tasks: int) -> Repo:
    write_flows(where / "flows", flows, tasks)
    settings = config.load(where, {"GITSYNC_NO_CACHE": "1"})
    tree = sync.desired_tree(settings)
    work = [
        {"name": w.name, "directory": list(w.directory), "json": flow_struct.managed_flow_struct(w)}
        for w in tree.workflows
    ]
    return Repo(where, tree, work)


@dataclass
class Measured:
    seconds: float
    max_rss_mb: float


def command(args: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...]) -> Measured:
    """Wall time and peak resident memory of one command (its own, from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}")
    return Measured(took, usage.ru_maxrss / 1024)


GITSYNC = [sys.executable, "-m", "gitsync"]
APPLY = [*GITSYNC, "apply", "--auto-approve", "--quiet", "--target", "bench"]
PLAN = [*GITSYNC, "plan", "--detailed-exitcode", "--quiet", "--target", "bench"]


def compare(repo: Repo, data: Path, repeat: int) -> None:
    best: dict[str, float] = {}

    def keep(what: str, seconds: float) -> None:
        best[what] = min(best.get(what, float("inf")), seconds)

    work = repo.path / "work.json"
    for round_ in range(repeat):
        # creates: a fresh engine for each measurement
        for side in ("gitsync", "loop", "gitsync command", "loop command"):
            shutil.rmtree(data, ignore_errors=True)
            with served(data) as url:
                if side == "gitsync":
                    keep("create gitsync", gitsync_apply(url, repo.tree, "create"))
                elif side == "loop":
                    bare = Bare(url)
                    start = time.perf_counter()
                    loop_create(bare, repo.flows)
                    keep("create loop", time.perf_counter() - start)
                    bare.close()
                elif side == "gitsync command":
                    repo.target(url)
                    keep("create command", command(APPLY, repo.path, repo.env(), (0,)).seconds)
                else:
                    work.write_text(json.dumps({"kind": "create", "flows": repo.flows}))
                    loop = [sys.executable, __file__, "--bare-loop", url, str(work)]
                    keep("create loop command", command(loop, repo.path, repo.env(), (0,)).seconds)
        # updates: one engine holding the flows, each measurement a new description
        shutil.rmtree(data, ignore_errors=True)
        with served(data) as url:
            gitsync_apply(url, repo.tree, "create")
            bodies = save_bodies(url, repo.tree)
            repo.target(url)
            for n, side in enumerate(("gitsync", "loop", "gitsync command", "loop command")):
                text = f"round {round_} {side}"
                if side == "gitsync":
                    keep(
                        "update gitsync",
                        gitsync_apply(url, described(repo.tree, text), "update_flow"),
                    )
                elif side == "loop":
                    bare = Bare(url)
                    start = time.perf_counter()
                    loop_update(bare, bodies, marker.with_marker(text))
                    keep("update loop", time.perf_counter() - start)
                    bare.close()
                elif side == "gitsync command":
                    for path in (repo.path / "flows").rglob("*.yaml"):
                        lines = path.read_text().splitlines()
                        lines[0] = f"description: {text} {n}"
                        path.write_text("\n".join(lines) + "\n")
                    keep("update command", command(APPLY, repo.path, repo.env(), (0,)).seconds)
                else:
                    desc = marker.with_marker(text)
                    work.write_text(json.dumps({"kind": "update", "bodies": bodies, "desc": desc}))
                    loop = [sys.executable, __file__, "--bare-loop", url, str(work)]
                    keep("update loop command", command(loop, repo.path, repo.env(), (0,)).seconds)
        print(f"round {round_ + 1} of {repeat} done", file=sys.stderr)
    flows = len(repo.flows)
    print(f"{flows} flows, enabled, concurrency {CONCURRENCY}, best of {repeat}")
    for kind, what in (("create", "Create Directory + Import + Enable"), ("update", "Load + Save")):
        loop, ours = best[f"{kind} loop"], best[f"{kind} gitsync"]
        print(f"{kind}: bare loop ({what}): {loop:7.3f} s")
        print(f"{kind}: remote.apply:            {ours:7.3f} s  ratio {ours / loop:.2f}x")
    print("goal: apply <= 1.3x the bare loop")
    print("as commands (interpreter start, validation, lock, reading included on both sides):")
    for kind in ("create", "update"):
        loop, ours = best[f"{kind} loop command"], best[f"{kind} command"]
        print(f"{kind}: bare loop command:       {loop:7.3f} s")
        print(f"{kind}: `gitsync apply`:         {ours:7.3f} s  ratio {ours / loop:.2f}x")


def scale(where: Path, data: Path, sizes: list[int], tasks: int, repeat: int) -> None:
    results: dict[tuple[int, str], Measured] = {}
    for size in sizes:
        repo_dir = where / f"repo{size}"
        write_flows(repo_dir / "flows", size, tasks)
        repo = Repo(repo_dir, Tree.of([]), [])
        for _ in range(repeat):
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(repo_dir / "cache", ignore_errors=True)
            with served(data) as url:
                repo.target(url)
                for what, args, ok in (("apply", APPLY, (0,)), ("plan", PLAN, (0,))):
                    got = command(args, repo_dir, repo.env(), ok)
                    old = results.get((size, what))
                    if old is None or got.seconds < old.seconds:
                        results[(size, what)] = got
            print(f"{size} flows: round done", file=sys.stderr)
    base = sizes[0]
    print(f"plan and apply at scale: {tasks} tasks per flow, enabled, best of {repeat}")
    for what in ("apply", "plan"):
        for size in sizes:
            got = results[(size, what)]
            ratio = got.seconds / results[(base, what)].seconds
            print(
                f"gitsync {what:<5} {size:>6} flows: {got.seconds:8.2f} s  {ratio:6.2f}x of "
                f"{base}  peak RSS {got.max_rss_mb:6.1f} MB"
            )
    print("goals: 10,000 within 12x of 1,000; peak RSS < 400 MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, help="plan and apply of this many against --flows")
    parser.add_argument("--bare-loop", nargs=2, metavar=("URL", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_loop:
        loop_command(args.bare_loop[0], Path(args.bare_loop[1]))
        return
    with tempfile.TemporaryDirectory(dir=default_dir()) as tmp:
        where = Path(tmp)
        if args.scale:
            scale(where, where / "engine", [args.flows, args.scale], args.tasks, args.repeat)
        else:
            compare(make_repo(where, args.flows, args.tasks), where / "engine", args.repeat)


if __name__ == "__main__":
    main()
