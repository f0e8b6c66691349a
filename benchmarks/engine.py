"""The engine running a 1,000-task DAG of `true` versus `make -j N` running the same DAG.

Run: .venv/bin/python benchmarks/engine.py [--tasks 1000] [--width 50] [--jobs N] [--repeat 3]
     [--dir DIR] [--poll SECONDS]

The engine's time runs from the Trigger Flow request until the instance's final status is
stored. The benchmark learns of that end in-process (Runner.wait), as make's end is its exit.
With --poll it asks List Flow Instances over HTTP instead, the way a dashboard would: on a
machine with few cores that client's CPU, and the rounding up to the next ask, show in the
engine's time.

DIR holds the engine's data: its store, and a log file per task run. The default is /dev/shm
where it is a tmpfs, else the system's temporary directory: make creates no files, and on some
file systems creating a file costs more after many were deleted (ext4 without a journal skips
recently freed inodes), which would measure the disk's history, not the engine. Pass a
directory on disk to see that cost too.

The DAG is layered: each layer's tasks depend on two tasks of the layer before (fan-out and
fan-in). Both sides get the same parallelism N (default: the CPU count). Prints the best wall
time of each, the ratio (goal <= 1.3x) and the engine's overhead per task over make
(goal <= 2 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from gitsync.engine.server import EngineOptions, RunningEngine


def layers(tasks: int, width: int) -> list[list[str]]:
    names = [f"t{i}" for i in range(tasks)]
    return [names[i : i + width] for i in range(0, tasks, width)]


def upstreams(grid: list[list[str]]) -> dict[str, list[str]]:
    ups: dict[str, list[str]] = {}
    for depth, layer in enumerate(grid):
        for i, name in enumerate(layer):
            if depth == 0:
                ups[name] = []
                continue
            before = grid[depth - 1]
            ups[name] = sorted({before[i % len(before)], before[(i * 7 + 3) % len(before)]})
    return ups


def run_make(ups: dict[str, list[str]], jobs: int, work: Path) -> float:
    makefile = work / "Makefile"
    lines = [".PHONY: all " + " ".join(ups), "all: " + " ".join(ups)]
    for name, deps in ups.items():
        lines += [f"{name}: {' '.join(deps)}", "\ttrue"]
    makefile.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    subprocess.run(["make", "-s", f"-j{jobs}", "-f", str(makefile), "all"], cwd=work, check=True)
    return time.perf_counter() - start


def run_floor(ups: dict[str, list[str]], jobs: int, work: Path) -> float:
    """The least any runner in this process can do: the same DAG through one posix_spawn +
    pidfd loop with a log file per task, and no other bookkeeping. The gap between it and make
    is CPython and the kernel (a process of the engine's size spawns more slowly); the gap
    between the engine and it is the engine's own."""
    true = shutil.which("true")
    assert true is not None
    down: dict[str, list[str]] = {n: [] for n in ups}
    waiting = {n: len(us) for n, us in ups.items()}
    for n, us in ups.items():
        for u in us:
            down[u].append(n)
    ready = [n for n, w in waiting.items() if w == 0]
    environment = dict(os.environ)
    devnull = os.open(os.devnull, os.O_RDONLY)
    selector = selectors.DefaultSelector()
    running = done = 0
    start = time.perf_counter()
    while done < len(ups):
        while ready and running < jobs:
            name = ready.pop()
            log = os.open(work / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            pid = os.posix_spawn(
                true,
                [true],
                environment,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull, 0),
                    (os.POSIX_SPAWN_DUP2, log, 1),
                    (os.POSIX_SPAWN_DUP2, log, 2),
                ],
                setsid=True,
            )
            selector.register(os.pidfd_open(pid), selectors.EVENT_READ, (name, pid, log))
            running += 1
        for key, _ in selector.select():
            name, pid, log = key.data
            os.waitpid(pid, 0)
            selector.unregister(key.fd)
            os.close(key.fd)
            os.close(log)
            running -= 1
            done += 1
            for child in down[name]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    ready.append(child)
    elapsed = time.perf_counter() - start
    os.close(devnull)
    selector.close()
    return elapsed


def run_engine(ups: dict[str, list[str]], jobs: int, work: Path, poll: float = 0) -> float:
    options = EngineOptions(work / "engine", parallelism=jobs)
    flow = {
        "cycle": "D",
        "cron": "",
        "type": 0,
        "owners": "local",
        "tasks": [
            {
                "name": n,
                "type": "COMMAND",
                "cmd": "true",
                "retryLimit": 0,
                "timeout": 60,
                "runMode": "{}",
            }
            for n in ups
        ],
        "relations": [
            {"sourceTaskName": u, "targetTaskName": n, "rerun": True}
            for n, us in ups.items()
            for u in us
        ],
    }
    query = {"userId": "u_local", "orgId": "o_local"}
    base = "/batch-processing-service/v2.1"
    with RunningEngine(options) as engine, httpx.Client(base_url=engine.url, timeout=60) as http:
        root = http.get(f"{base}/directories", params={**query, "action": "listWorkFlowDirs"})
        dir_id = root.json()["data"][0]["key"]
        imported = http.post(
            f"{base}/flows",
            params={**query, "action": "import"},
            content=json.dumps({"flowName": "bench", "dirId": dir_id, "flowJson": flow}),
            headers={"Content-Type": "application/json"},  # the engine refuses others
        )
        flow_id = imported.json()["data"]["flowId"]
        start = time.perf_counter()
        answer = http.post(
            f"{base}/flows",
            params={**query, "action": "trigger"},
            content=json.dumps({"flowId": flow_id, "triggerTime": int(time.time() * 1000)}),
            headers={"Content-Type": "application/json"},  # the engine refuses others
        )
        instance = answer.json()["data"]["flowInstanceId"]
        finished = {
            "type": 0,
            "expression": instance,
            "fromTriggerTime": 0,
            "toTriggerTime": 2**62,
            "status": [-1, 1, 4, 7, 8],
        }
        if poll:  # ask the way a dashboard would: is it finished? (List Flow Instances)
            while not http.post(
                f"{base}/flowInstances",
                params={**query, "action": "search"},
                content=json.dumps(finished),
            ).json()["data"]["count"]:
                time.sleep(poll)
        elif not engine.engine.runner.wait(instance, timeout=600):
            raise SystemExit("the engine run did not end")
        elapsed = time.perf_counter() - start
        got = http.post(
            f"{base}/flowInstances",
            params={**query, "action": "search"},
            content=json.dumps(finished),
        ).json()
        ended = got["data"]["flowInsts"][0]["statusDesc"]
        if ended != "SUCCESS":
            raise SystemExit(f"the engine run ended {ended}")
    return elapsed


def file_system(path: Path) -> str:
    """The mount's type (the kind of file system decides what creating a log file costs)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) > 2 and resolved.startswith(fields[1]) and len(fields[1]) > len(best):
            best, kind = fields[1], f"{fields[2]} ({fields[1]})"
    return kind


def default_dir() -> Path | None:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and file_system(shm).startswith("tmpfs") else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--width", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--poll",
        type=float,
        default=0,
        help="learn that the run ended by asking List Flow Instances every POLL seconds",
    )
    parser.add_argument(
        "--dir", type=Path, default=default_dir(), help="where the engine's data goes"
    )
    args = parser.parse_args()
    if not shutil.which("make"):
        raise SystemExit("make is not installed")
    ups = upstreams(layers(args.tasks, args.width))
    engine_best = make_best = floor_best = float("inf")
    # Every run's files are removed only at the end: ext4 skips recently deleted inodes when it
    # allocates new ones (`recently_deleted`), and a cleanup between runs made creating the
    # next run's log files up to 20x slower, which measured the harness, not the engine.
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        filesystem = file_system(Path(tmp))
        for i in range(args.repeat):
            (Path(tmp) / f"make{i}").mkdir()
            (Path(tmp) / f"engine{i}").mkdir()
            (Path(tmp) / f"floor{i}").mkdir()
            make_best = min(make_best, run_make(ups, args.jobs, Path(tmp) / f"make{i}"))
            engine_best = min(
                engine_best, run_engine(ups, args.jobs, Path(tmp) / f"engine{i}", args.poll)
            )
            if hasattr(os, "pidfd_open"):
                floor_best = min(floor_best, run_floor(ups, args.jobs, Path(tmp) / f"floor{i}"))
    overhead = (engine_best - make_best) / args.tasks * 1000
    print(
        f"DAG: {args.tasks} tasks of `true` in {len(layers(args.tasks, args.width))} layers, "
        f"parallelism {args.jobs}, best of {args.repeat}, data on {filesystem}"
    )
    print(f"gitsync engine:        {engine_best:8.3f} s")
    print(f"make -j{args.jobs}:               {make_best:8.3f} s")
    if floor_best < float("inf"):
        print(
            f"bare spawn loop:       {floor_best:8.3f} s  ({floor_best / make_best:.2f}x make: "
            "the same DAG, this process, no bookkeeping)"
        )
    print(f"ratio engine / make:   {engine_best / make_best:8.2f}x  (goal <= 1.3x)")
    print(f"overhead per task:     {overhead:8.3f} ms (goal <= 2 ms)")


if __name__ == "__main__":
    main()
