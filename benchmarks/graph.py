"""`gitsync graph --format svg` at size: the layout against validating the same file.

Run: .venv/bin/python benchmarks/graph.py [--tasks 200 1000] [--repeat 5]

For each size and DAG shape a workflow file is written, then, alternating in each round (in
reverse order every other round), the baseline and the measurement are timed; best of
--repeat rounds:

- **validate**: `validate_paths` of the one file, no cache (what `gitsync graph` does first);
- **svg**: `graph_svg.svg` of its picture (grandalf's Sugiyama layout, then the SVG text);
- **mermaid**: `graph.mermaid` of it, for scale.

Shapes: chain (each task waits for the one before), fan (all wait for the first), layers
(each waits for the task 10 before it and for the first: many long edges, the layout's worst
case, as each long edge adds a dummy node on every layer it crosses), apart (no edges).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gitsync.graph import graph_of, mermaid
from gitsync.graph_svg import svg
from gitsync.validate import validate_paths

SHAPES = ("chain", "fan", "layers", "apart")


def upstreams(shape: str, i: int) -> list[int]:
    if i == 0 or shape == "apart":
        return []
    return {"chain": [i - 1], "fan": [0], "layers": sorted({i - 10, 0} if i >= 10 else {0})}[shape]


def write(path: Path, shape: str, n: int) -> None:
    tasks = [
        {
            "name": f"task_{i:04}",
            "command": f"echo {i}",
            "depends_on": [f"task_{u:04}" for u in upstreams(shape, i)],
        }
        for i in range(n)
    ]
    path.write_text(json.dumps({"tasks": tasks}))  # JSON is YAML


def best(fn: Callable[[], object], times: list[float]) -> None:
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'tasks':>5} {'shape':<7} {'validate':>10} {'svg':>10} {'mermaid':>9} {'svg/val':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.tasks:
            for shape in SHAPES:
                path = Path(tmp) / f"{shape}_{n}.yaml"
                write(path, shape, n)
                result = validate_paths([path])
                assert result.ok, result.problems[:3]
                picture = graph_of(result.workflows[0])
                runs: dict[str, list[float]] = {"validate": [], "svg": [], "mermaid": []}
                steps: list[tuple[str, Callable[[], object]]] = [
                    ("validate", lambda p=path: validate_paths([p])),  # type: ignore[misc]
                    ("svg", lambda g=picture: svg(g, "w")),  # type: ignore[misc]
                    ("mermaid", lambda g=picture: mermaid(g)),  # type: ignore[misc]
                ]
                for round_ in range(args.repeat):
                    for name, fn in steps if round_ % 2 == 0 else steps[::-1]:
                        best(fn, runs[name])
                v, s, m = (min(runs[k]) for k in ("validate", "svg", "mermaid"))
                print(
                    f"{n:5} {shape:<7} {v * 1000:8.1f}ms {s * 1000:8.1f}ms {m * 1000:7.2f}ms "
                    f"{s / v:7.1f}x",
                    flush=True,
                )


if __name__ == "__main__":
    main()
