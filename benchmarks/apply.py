"""`gitsync apply` at scale: 1,000 new workflows, then 1,000 updates, against a bare loop.

Run: .venv/bin/python benchmarks/apply.py [--flows 1000] [--tasks 10] [--repeat 4]
     .venv/bin/python benchmarks/apply.py --scale 10000 [--repeat 1]
     (either with --extensions: the engine's extensions on)

The engine runs as its own process (`gitsync serve` on 127.0.0.1, a free port, its scheduler
on, its data on tmpfs when /dev/shm is one), as a real service is remote. The workflows are
daily, firing 12 hours from now (benchmarks/plan.py's write_flows), and enabled, as users
have them. The engine is strict by default, as EnOS is: `gitsync apply` and the loop command
read each flow with Export and Get Flow; with --extensions, Export alone (docs/engine.md,
Extensions). The mode measured is printed.

Default mode, best of --repeat rounds, both sides 8 at a time; within a round the four
measurements alternate, in reverse order every other round:

- **create**: 1,000 workflows of 10 tasks applied to an empty engine (a fresh one for each
  measurement): `remote.apply` of the plan (Create Directory, Import, Enable) against the bare
  httpx loop of benchmarks/bare_writes.py sending the same requests with bodies built before
  the clock starts (directories level by level, then each flow's Import and Enable).
- **update**: the description of all 1,000 changed: `remote.apply` (Load For Edit and Save of
  each) against the loop sending Load For Edit and a Save body built beforehand.
- The same two as commands: `gitsync apply --auto-approve` (validate the files, lock, read,
  plan, write, unlock) against the loop as a command of its own making the same requests.

Goal: apply <= 1.3x the loop.

--scale N: plan and apply of N workflows against --flows (1,000), as commands on an empty
engine: `gitsync apply` (validation cache empty, as in CI), then `gitsync plan` finding no
changes. Prints wall time and the ratio to 1,000 (goal: <= 12x for 10,000), the gitsync
process's CPU (from wait4) and its ratio, the engine's CPU meanwhile, and the peak resident
memory of the gitsync process (wait4's ru_maxrss, a forked child included; goal < 400 MB).
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
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from bare_writes import CONCURRENCY, ORG, ROOT, USER, Bare, loop_create, loop_update
from engine import default_dir
from plan import Served, compile_bytecode, mode, served, write_flows

from gitsync import config, remote, sync
from gitsync.client import Client
from gitsync.codec import edit_view, flow_struct, marker
from gitsync.model import Tree
from gitsync.plan import compute

BARE = Path(__file__).with_name("bare_writes.py")


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
    max_rss_mb: float  # the command's peak resident memory (a forked child's included)
    cpu: float  # the command's CPU seconds, user + system
    engine_cpu: float  # the engine's CPU seconds meanwhile


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a running process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def command(args: list[str], cwd: Path, env: dict[str, str], engine_pid: int) -> Measured:
    """Run a command that must exit 0: wall time, and from wait4 its own peak memory and CPU."""
    engine_before = cpu_of(engine_pid)
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measured(took, usage.ru_maxrss / 1024, cpu, cpu_of(engine_pid) - engine_before)


GITSYNC = [sys.executable, "-m", "gitsync"]
APPLY = [*GITSYNC, "apply", "--auto-approve", "--quiet", "--target", "bench"]
PLAN = [*GITSYNC, "plan", "--detailed-exitcode", "--quiet", "--target", "bench"]


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run(args: list[str], repo: Repo, engine: Served) -> float:
    return command(args, repo.path, repo.env(), engine.pid).seconds


SIDES = ("gitsync", "loop", "gitsync command", "loop command")


def sides(round_: int) -> list[str]:
    """Who goes first alternates from round to round: loop and gitsync, in-process and as
    commands, each go first in half the rounds."""
    return list(SIDES if round_ % 2 == 0 else reversed(SIDES))


def create_round(
    repo: Repo, data: Path, keep: Callable[[str, float], None], round_: int, extensions: bool
) -> None:
    """The four ways of creating the flows, each on a fresh engine."""
    work = repo.path / "work.json"
    work.write_text(json.dumps({"kind": "create", "flows": repo.flows, "extensions": extensions}))
    for side in sides(round_):
        shutil.rmtree(data, ignore_errors=True)
        with served(data, extensions) as engine:
            if side == "gitsync":
                keep("create gitsync", gitsync_apply(engine.url, repo.tree, "create"))
            elif side == "loop":
                bare = Bare(engine.url)
                keep("create loop", timed(partial(loop_create, bare, repo.flows)))
                bare.close()
            elif side == "gitsync command":
                repo.target(engine.url)
                keep("create command", run(APPLY, repo, engine))
            else:
                loop = [sys.executable, str(BARE), engine.url, str(work)]
                keep("create loop command", run(loop, repo, engine))


def update_round(
    repo: Repo, data: Path, keep: Callable[[str, float], None], round_: int, extensions: bool
) -> None:
    """The four ways of changing every flow's description, on one engine holding them."""
    work = repo.path / "work.json"
    shutil.rmtree(data, ignore_errors=True)
    with served(data, extensions) as engine:
        gitsync_apply(engine.url, repo.tree, "create")
        bodies = save_bodies(engine.url, repo.tree)
        repo.target(engine.url)
        for n, side in enumerate(sides(round_)):
            text = f"round {round_} {side}"
            if side == "gitsync":
                tree = described(repo.tree, text)
                keep("update gitsync", gitsync_apply(engine.url, tree, "update_flow"))
            elif side == "loop":
                bare = Bare(engine.url)
                desc = marker.with_marker(text)
                keep("update loop", timed(partial(loop_update, bare, bodies, desc)))
                bare.close()
            elif side == "gitsync command":
                for path in (repo.path / "flows").rglob("*.yaml"):
                    lines = path.read_text().splitlines()
                    lines[0] = f"description: {text} {n}"
                    path.write_text("\n".join(lines) + "\n")
                keep("update command", run(APPLY, repo, engine))
            else:
                desc = marker.with_marker(text)
                update = {"kind": "update", "bodies": bodies, "desc": desc}
                work.write_text(json.dumps({**update, "extensions": extensions}))
                loop = [sys.executable, str(BARE), engine.url, str(work)]
                keep("update loop command", run(loop, repo, engine))


def compare(repo: Repo, data: Path, repeat: int, extensions: bool) -> None:
    best: dict[str, float] = {}

    def keep(what: str, seconds: float) -> None:
        best[what] = min(best.get(what, float("inf")), seconds)

    for round_ in range(repeat):
        create_round(repo, data, keep, round_, extensions)
        update_round(repo, data, keep, round_, extensions)
        print(f"round {round_ + 1} of {repeat} done", file=sys.stderr)
    print(f"{len(repo.flows)} flows, enabled, concurrency {CONCURRENCY}, best of {repeat}")
    print(f"mode: {mode(extensions)}")

    def line(label: str, seconds: float, loop: float | None = None) -> None:
        ratio = f"  ratio {seconds / loop:.2f}x" if loop else ""
        print(f"{label:<52} {seconds:7.3f} s{ratio}")

    for kind, what in (("create", "Create Directory, Import, Enable"), ("update", "Load, Save")):
        loop = best[f"{kind} loop"]
        line(f"{kind}: bare loop ({what})", loop)
        line(f"{kind}: remote.apply", best[f"{kind} gitsync"], loop)
    print("goal: apply <= 1.3x the bare loop")
    print("as commands (interpreter start, lock and reading on both sides; gitsync validates too):")
    for kind in ("create", "update"):
        loop = best[f"{kind} loop command"]
        line(f"{kind}: bare loop command", loop)
        line(f"{kind}: `gitsync apply`", best[f"{kind} command"], loop)


def scale(
    where: Path, data: Path, sizes: list[int], tasks: int, repeat: int, extensions: bool
) -> None:
    results: dict[tuple[int, str], Measured] = {}
    for size in sizes:
        repo_dir = where / f"repo{size}"
        write_flows(repo_dir / "flows", size, tasks)
        repo = Repo(repo_dir, Tree.of([]), [])
        for _ in range(repeat):
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(repo_dir / "cache", ignore_errors=True)
            with served(data, extensions) as engine:
                repo.target(engine.url)
                for what, args in (("apply", APPLY), ("plan", PLAN)):
                    got = command(args, repo_dir, repo.env(), engine.pid)
                    old = results.get((size, what))
                    if old is None or got.seconds < old.seconds:
                        results[(size, what)] = got
            print(f"{size} flows: round done", file=sys.stderr)
    base = sizes[0]
    print(f"plan and apply at scale: {tasks} tasks per flow, enabled, best of {repeat}")
    print(f"mode: {mode(extensions)}")
    print("                           wall   x base   gitsync CPU  x base   engine CPU   peak RSS")
    for what in ("apply", "plan"):
        first = results[(base, what)]
        for size in sizes:
            got = results[(size, what)]
            print(
                f"gitsync {what:<5} {size:>6} flows: {got.seconds:7.2f} s "
                f"{got.seconds / first.seconds:6.2f}x  {got.cpu:8.2f} s "
                f"{got.cpu / first.cpu:6.2f}x  {got.engine_cpu:8.2f} s  {got.max_rss_mb:6.1f} MB"
            )
    print("goals: 10,000 within 12x of 1,000 (wall); peak RSS < 400 MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--scale", type=int, help="plan and apply of this many against --flows")
    parser.add_argument("--extensions", action="store_true", help="the engine's extensions on")
    args = parser.parse_args()
    compile_bytecode()
    with tempfile.TemporaryDirectory(dir=default_dir()) as tmp:
        where = Path(tmp)
        if args.scale:
            sizes = [args.flows, args.scale]
            scale(where, where / "engine", sizes, args.tasks, args.repeat, args.extensions)
        else:
            repo = make_repo(where, args.flows, args.tasks)
            compare(repo, where / "engine", args.repeat, args.extensions)


if __name__ == "__main__":
    main()
