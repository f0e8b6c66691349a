"""The engine at idle: 1,000 enabled workflows whose next fire is hours away.

Run: .venv/bin/python benchmarks/idle.py [--flows 1000] [--seconds 10] [--rounds 3] [--reads 3]

The engine runs as its own process (`gitsync serve`, scheduler on). plan.py's workflows are
applied (daily, firing 12 hours from now; enabled, as periodic workflows are by default).
Then, alternating --rounds times between all enabled and all disabled (an Enable or Disable
Flow for each; the engine is given a moment to settle after the switch):

- idle CPU: the engine's CPU time (utime + stime in /proc/<pid>/stat, children excluded) over
  --seconds of wall time with no requests, as a share of one core. Goal: < 2% enabled.
- reads: plan.py's bare List + Export loop (the 1,001 requests a plan makes), --reads times
  per state and round: its wall time (best and median) and the engine's CPU time for it
  (median). Goal: enabled within 5% of disabled.

CPU time is the process's own, so other load on the machine changes it less than the wall
times, which are hence alternated (the order flips every round) and taken best-of.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from plan import CONCURRENCY, bare_loop, served, write_flows  # benchmarks/plan.py (script dir)

from gitsync import config, remote, sync
from gitsync.client import Client
from gitsync.plan import compute

SETTLE = 2.0  # seconds after switching 1,000 workflows before measuring


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_share(pid: int, seconds: float) -> float:
    """The share of one core the process used over ``seconds`` of wall time."""
    cpu, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu) / (time.monotonic() - start)


def switch(client: Client, ids: list[int], enabled: bool) -> None:
    for flow_id in ids:
        (client.enable_flow if enabled else client.disable_flow)(flow_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reads", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        write_flows(repo / "flows", args.flows, 2)
        with served(repo / "engine") as engine:
            url, pid = engine.url, engine.pid
            (repo / "gitsync.yaml").write_text(
                f"targets:\n  bench:\n    url: {url}\n    root: gitsync\n"
                "    org_id: o_local\n    user_id: u_local\n"
            )
            settings = config.load(repo, {"GITSYNC_CACHE_DIR": str(repo / "cache")})
            target = settings.target("bench")
            with Client(url, "o_local", "u_local", max_concurrency=CONCURRENCY) as client:
                state = remote.read_state(client, target.root)
                remote.apply(client, compute(sync.desired_tree(settings), state), state)
                state = remote.read_state(client, target.root)
                ids = [f.id for f in state.flows]
                enabled = sum(f.workflow.schedule.enabled for f in state.flows)
                print(f"setup: {len(ids)} workflows, {enabled} enabled, engine pid {pid}")
                idle: dict[bool, list[float]] = {True: [], False: []}
                walls: dict[bool, list[float]] = {True: [], False: []}
                serving: dict[bool, list[float]] = {True: [], False: []}
                for round_no in range(args.rounds):
                    for on in (True, False) if round_no % 2 == 0 else (False, True):
                        switch(client, ids, on)
                        time.sleep(SETTLE)
                        idle[on].append(idle_share(pid, args.seconds))
                        for _ in range(args.reads):
                            before = cpu_seconds(pid)
                            walls[on].append(bare_loop(url))
                            serving[on].append(cpu_seconds(pid) - before)
    report(args, idle, walls, serving)


def report(
    args: argparse.Namespace,
    idle: dict[bool, list[float]],
    walls: dict[bool, list[float]],
    serving: dict[bool, list[float]],
) -> None:
    print(f"{args.flows} workflows, {args.rounds} rounds (order flipped each round)")
    for on, label in ((True, "enabled "), (False, "disabled")):
        shares = ", ".join(f"{100 * s:.1f}%" for s in idle[on])
        print(f"idle CPU, {label}: {shares}  (share of one core over {args.seconds} s)")
    print("goal: < 2% of a core with the workflows enabled")
    print(f"bare List + Export loop ({args.flows + 1} requests), {args.reads} per state per round:")
    for on, label in ((True, "enabled "), (False, "disabled")):
        print(
            f"  {label}: best {min(walls[on]):.3f} s, median {statistics.median(walls[on]):.3f} s;"
            f" engine CPU median {statistics.median(serving[on]):.3f} s"
        )
    best = min(walls[True]) / min(walls[False])
    median = statistics.median(walls[True]) / statistics.median(walls[False])
    cpu = statistics.median(serving[True]) / statistics.median(serving[False])
    n = args.reads
    paired = statistics.median(  # each round's two states side by side: drift cancels
        statistics.median(walls[True][i : i + n]) / statistics.median(walls[False][i : i + n])
        for i in range(0, len(walls[True]), n)
    )
    print(f"enabled / disabled: best {best:.2f}x, median {median:.2f}x, engine CPU {cpu:.2f}x")
    print(f"                    median of the rounds' own ratios {paired:.2f}x")
    print("goal: enabled within 5% of disabled (<= 1.05x)")


if __name__ == "__main__":
    main()
