"""The engine at idle: 1,000 enabled workflows whose next fire is hours away.

Run: .venv/bin/python benchmarks/idle.py [--flows 1000] [--seconds 10] [--rounds 3] [--reads 3]

The engine runs as its own process (`gitsync serve`, scheduler on). plan.py's workflows are
applied (daily, firing 12 hours from now; enabled, as periodic workflows are by default).
Then, alternating --rounds times between all enabled and all disabled (an Enable or Disable
Flow for each; the engine is given a moment to settle after the switch):

- idle CPU: the engine's CPU time (utime + stime in /proc/<pid>/stat, children excluded) over
  --seconds of wall time with no requests, as a share of one core. Goal: < 2% enabled.
- reads: plan.py's bare List + Export loop (the 1,001 requests a plan makes), best of --reads
  per round and best over the rounds. Goal: enabled within 5% of disabled.

CPU time is the process's own, so other load on the machine changes it little; the read
times are wall times, hence alternated and best-of.
"""

from __future__ import annotations

import argparse
import os
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
                cpu: dict[bool, list[float]] = {True: [], False: []}
                reads: dict[bool, list[float]] = {True: [], False: []}
                for _ in range(args.rounds):
                    for on in (True, False):
                        switch(client, ids, on)
                        time.sleep(SETTLE)
                        cpu[on].append(idle_share(pid, args.seconds))
                        reads[on].append(min(bare_loop(url) for _ in range(args.reads)))
    print(f"{args.flows} workflows, {args.rounds} alternated rounds, idle over {args.seconds} s")
    for on, label in ((True, "enabled "), (False, "disabled")):
        shares = ", ".join(f"{100 * s:.1f}%" for s in cpu[on])
        print(f"idle CPU, {label}:   {shares}  (share of one core)")
    print("goal: < 2% of a core with the workflows enabled")
    for on, label in ((True, "enabled "), (False, "disabled")):
        times = ", ".join(f"{t:.3f}" for t in reads[on])
        print(f"bare read loop, {label}: {times} s  (best of {args.reads} per round)")
    ratio = min(reads[True]) / min(reads[False])
    print(f"enabled / disabled, best of all: {ratio:.2f}x  (goal <= 1.05x)")


if __name__ == "__main__":
    main()
