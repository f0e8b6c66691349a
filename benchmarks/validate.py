"""gitsync validate (schema + semantics) vs check-jsonschema (schema only), same 1,000 files.

Run: .venv/bin/python benchmarks/validate.py [--files N] [--tasks N] [--repeat N]
Prints the best wall time of each over --repeat runs and the ratio (goal: <= 1.0x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def make_tree(root: Path, files: int, tasks: int) -> list[Path]:
    paths = []
    for i in range(files):
        folder = root / f"team{i % 10}" / f"area{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"description: generated workflow {i}",
            "owners: [alice, bob]",
            "parameters:",
            "  WORK_DIR: /tmp/bench",
            f"  INDEX: {i}",
            "schedule:",
            "  cycle: day",
            '  cron: "0 30 2 * * ? *"',
            "  start: 2024-01-01",
            "tasks:",
        ]
        for t in range(tasks):
            lines += [
                f"  - name: task_{t}",
                f"    command: echo {i} {t} ${{WORK_DIR}}",
                "    timeout: 120",
                "    retries: 2",
            ]
            if t:
                ups = sorted({f"task_{t - 1}", f"task_{t // 2}"})
                lines.append(f"    depends_on: [{', '.join(ups)}]")
            if t % 3 == 0:
                lines += ["    run_mode:", "      cpu: 1", "      memory: 2"]
        path = folder / f"flow_{i:04d}.yaml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def best_of(repeat: int, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        best = min(best, elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    checker = shutil.which("check-jsonschema", path=str(BIN)) or shutil.which("check-jsonschema")
    if not checker:
        raise SystemExit("check-jsonschema is not installed (pip install -e '.[test]')")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "flows"
        paths = make_tree(root, args.files, args.tasks)
        rel = [str(p.relative_to(tmp)) for p in paths]
        command = [str(BIN / "gitsync"), "validate", "flows"]
        # the comparison is without gitsync's cache (check-jsonschema has none for documents)
        gitsync = best_of(args.repeat, command, Path(tmp), {**os.environ, "GITSYNC_NO_CACHE": "1"})
        cache = {**os.environ, "GITSYNC_CACHE_DIR": str(Path(tmp) / "cache")}
        best_of(1, command, Path(tmp), cache)  # fills the cache
        warm = best_of(args.repeat, command, Path(tmp), cache)
        schema = str(ROOT / "schemas" / "workflow.schema.json")
        baseline = best_of(args.repeat, [checker, "--schemafile", schema, *rel], Path(tmp))
    print(f"files: {args.files} x {args.tasks} tasks, best of {args.repeat}")
    print(f"gitsync validate (schema + semantics): {gitsync:8.3f} s")
    print(f"check-jsonschema (schema only):        {baseline:8.3f} s")
    print(f"ratio gitsync / check-jsonschema:      {gitsync / baseline:8.2f}x  (goal <= 1.0x)")
    print(f"gitsync validate, files unchanged:     {warm:8.3f} s  (its cache; for information)")


if __name__ == "__main__":
    main()
