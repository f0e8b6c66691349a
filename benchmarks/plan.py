"""`gitsync plan` at scale: 1,000 flows of 10 tasks on the engine, no changes to find.

Run: .venv/bin/python benchmarks/plan.py [--flows 1000] [--tasks 10] [--repeat 3] [--disabled]
     [--extensions]

Compares, in one run and with the same concurrency (8), the whole plan (validate the files,
List Workflow Directories, read every flow, decode, normalize, diff) against a bare httpx
loop that only makes the same reads. Goal: <= 1.2x. The engine is strict by default, as EnOS
is: both sides read a flow with Export and Get Flow (the scheduling state, SPEC's Export has
none). With --extensions the engine's Export states it too, and both read Export alone
(docs/engine.md, Extensions). The mode measured is printed. Also prints how many
requests plan made, and the same comparison as commands: `gitsync plan` against the loop run
as a Python command of its own (`plan.py --bare-loop URL`), interpreter start included.

Plan is timed twice per round: with an empty validation cache (every file parsed and
validated: a fresh CI checkout) and with the files unchanged since the last run (the cache in
gitsync/cache.py: a developer's second plan, or CI keeping the cache folder). Plan checks the
files in a forked child while it reads the service, as `gitsync plan` does; the files alone
and the reading alone are timed too, for the breakdown.

The engine runs as its own process (`gitsync serve`, its scheduler on), as a real service
would be remote: in the benchmark's process it would spend the same GIL that both sides are
measured on. The workflows are daily, firing 12 hours from now, and enabled, as periodic
workflows are by default and as users have them (`--disabled` for a comparison).
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

import gitsync
from gitsync import config, remote, sync
from gitsync.client import Client
from gitsync.plan import compute

CONCURRENCY = 8


@dataclass
class Served:
    url: str
    pid: int  # for the engine's CPU time (benchmarks/idle.py)


@contextmanager
def served(data: Path, extensions: bool = False) -> Iterator[Served]:
    """`gitsync serve` on a free port, in its own process (its scheduler on); strict unless
    ``extensions``."""
    command = [sys.executable, "-m", "gitsync", "serve", "--port", "0", "--data-dir", str(data)]
    env = {k: v for k, v in os.environ.items() if k != "GITSYNC_ENGINE_EXTENSIONS"}
    proc = subprocess.Popen(
        command + (["--extensions"] if extensions else []),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield Served(proc.stdout.readline().strip(), proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def hours_away() -> int:
    """A UTC hour 12 hours from now: the daily fires are hours away whenever this runs."""
    return (dt.datetime.now(dt.UTC).hour + 12) % 24


def write_flows(
    root: Path, flows: int, tasks: int, hour: int | None = None, enabled: bool = True
) -> None:
    """Daily workflows firing at ``hour`` UTC; enabled, as periodic workflows are by default."""
    hour = hours_away() if hour is None else hour
    schedule = f"{{cycle: day, cron: '0 0 {hour} * * ? *', enabled: {str(enabled).lower()}}}"
    for i in range(flows):
        folder = root / f"team{i % 10}" / f"area{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"description: flow {i}",
            f"schedule: {schedule}",
            "parameters: {DIR: /tmp}",
            "tasks:",
        ]
        for t in range(tasks):
            deps = f", depends_on: [t{t - 1}]" if t else ""
            lines.append(f"  - {{name: t{t}, command: 'echo {i} {t}', timeout: 120{deps}}}")
        (folder / f"flow_{i:04d}.yaml").write_text("\n".join(lines) + "\n")


def reads_per_flow(extensions: bool) -> tuple[str, ...]:
    """What gitsync reads of each flow: Export, and Get Flow where Export lacks ``active``."""
    return ("export",) if extensions else ("export", "get")


def mode(extensions: bool) -> str:
    if extensions:
        return "engine with its extensions on: Export alone per flow"
    return "strict engine, as EnOS: Export + Get Flow per flow"


def bare_loop(url: str, extensions: bool = False) -> float:
    query = {"userId": "u_local", "orgId": "o_local"}
    base = "/batch-processing-service/v2.1"
    start = time.perf_counter()
    with httpx.Client(
        base_url=url, timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY * 2)
    ) as http:
        tree = http.get(
            f"{base}/directories", params={**query, "action": "listWorkFlowDirs"}
        ).json()["data"]
        ids, stack = [], list(tree)
        while stack:
            node = stack.pop()
            for child in node.get("children") or []:
                if child["isDirectory"]:
                    stack.append(child)
                elif not str(child["title"]).startswith("__gitsync_lock__"):
                    ids.append(child["key"])

        def read(flow_id: int) -> object:
            return [
                http.get(
                    f"{base}/flows", params={**query, "action": action, "flowId": str(flow_id)}
                ).json()["data"]
                for action in reads_per_flow(extensions)
            ]

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(read, ids))
    return time.perf_counter() - start


def compile_bytecode() -> None:
    """gitsync's modules compiled once, as installing the package does: where
    PYTHONDONTWRITEBYTECODE is set (as in these sessions), every command would otherwise
    compile the ~100 modules it imports again (about 0.15 s; fewer for the loop command)."""
    compileall.compile_dir(Path(gitsync.__file__).parent, quiet=1)


def timed(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> float:
    """Wall time of a command that must exit 0 (plan: no changes found)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=cwd, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--disabled", action="store_true", help="the workflows not enabled")
    parser.add_argument("--extensions", action="store_true", help="the engine's extensions on")
    parser.add_argument("--bare-loop", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_loop:  # the loop as a command of its own, to compare with the plan command
        bare_loop(args.bare_loop, args.extensions)
        return
    loop_args = ["--extensions"] if args.extensions else []
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        write_flows(repo / "flows", args.flows, args.tasks, enabled=not args.disabled)
        with served(repo / "engine", args.extensions) as engine:
            (repo / "gitsync.yaml").write_text(
                f"targets:\n  bench:\n    url: {engine.url}\n    root: gitsync\n"
                "    org_id: o_local\n    user_id: u_local\n"
            )
            cache_dir = repo / "cache"
            settings = config.load(repo, {"GITSYNC_CACHE_DIR": str(cache_dir)})
            target = settings.target("bench")
            tree = sync.desired_tree(settings)
            setup = time.perf_counter()
            with Client(engine.url, "o_local", "u_local", max_concurrency=CONCURRENCY) as client:
                state = remote.read_state(client, target.root)
                remote.apply(client, compute(tree, state), state)
                setup = time.perf_counter() - setup
                enabled = sum(
                    f.workflow.schedule.enabled
                    for f in remote.read_state(client, target.root).flows
                )
            print(f"setup: applied {args.flows} flows in {setup:.1f} s; {enabled} enabled")
            forked: set[bool] = set()
            plan_command = [sys.executable, "-m", "gitsync", "plan", "--target", "bench"]
            plan_command += ["--detailed-exitcode", "--quiet"]
            plan_env = {**os.environ, "GITSYNC_CACHE_DIR": str(cache_dir)}
            best: dict[str, float] = {}
            requests = 0

            def keep(what: str, seconds: float) -> None:
                best[what] = min(best.get(what, float("inf")), seconds)

            for _ in range(args.repeat):
                for warmth in ("cold", "warm"):
                    if warmth == "cold":
                        shutil.rmtree(cache_dir, ignore_errors=True)
                    start = time.perf_counter()
                    with (
                        sync.FilesBeingChecked(settings) as files,
                        Client(
                            engine.url, "o_local", "u_local", max_concurrency=CONCURRENCY
                        ) as client,
                    ):
                        planned = sync.make_plan(client, target, files)
                        forked.add(files.forked)
                        requests = client.requests
                    keep(warmth, time.perf_counter() - start)
                    if planned.plan.has_changes:
                        raise SystemExit("the plan found changes; the benchmark needs none")
                    # the parts alone, one after the other, for the breakdown
                    if warmth == "cold":
                        shutil.rmtree(cache_dir, ignore_errors=True)
                    start = time.perf_counter()
                    tree = sync.desired_tree(settings)
                    keep(f"{warmth} files", time.perf_counter() - start)
                with Client(
                    engine.url, "o_local", "u_local", max_concurrency=CONCURRENCY
                ) as client:
                    start = time.perf_counter()
                    sync.make_plan(client, target, tree)
                    keep("read", time.perf_counter() - start)
                keep("loop", bare_loop(engine.url, args.extensions))
                # the same two as commands: interpreter start and imports included
                loop_cmd = [sys.executable, __file__, "--bare-loop", engine.url, *loop_args]
                keep("loop command", timed(loop_cmd))
                for warmth in ("cold", "warm"):
                    if warmth == "cold":
                        shutil.rmtree(cache_dir, ignore_errors=True)
                    keep(f"{warmth} command", timed(plan_command, cwd=repo, env=plan_env))
    print(
        f"{args.flows} flows x {args.tasks} tasks, concurrency {CONCURRENCY}, best of {args.repeat}"
    )
    print(f"mode: {mode(args.extensions)}")
    loop = best["loop"]
    loop_requests = args.flows * len(reads_per_flow(args.extensions)) + 1
    print(f"bare httpx List + read loop:           {loop:8.3f} s  ({loop_requests} requests)")
    print(f"reading + decoding + diff alone:       {best['read']:8.3f} s  ({requests} requests)")
    for warmth, label in (("cold", "files new to the cache"), ("warm", "files unchanged")):
        print(f"gitsync plan, {label + ':':24} {best[warmth]:8.3f} s  ", end="")
        print(f"(files alone: {best[f'{warmth} files']:.3f} s)  ratio {best[warmth] / loop:.2f}x")
    how = {
        frozenset({True}): "in a forked child, while reading",
        frozenset({False}): "first, then reading (no fork)",
    }.get(frozenset(forked), "in a forked child in some rounds only")
    print(f"files checked {how}")
    print("goal: plan <= 1.2x the bare loop, with the workflows enabled")
    print("as commands (interpreter start and imports included):")
    loop_command = best["loop command"]
    print(f"bare loop as a python command:         {loop_command:8.3f} s")
    for warmth, label in (("cold", "files new to the cache"), ("warm", "files unchanged")):
        command = best[f"{warmth} command"]
        print(f"`gitsync plan`, {label + ':':23} {command:8.3f} s  ", end="")
        print(f"ratio {command / loop_command:.2f}x")


if __name__ == "__main__":
    main()
