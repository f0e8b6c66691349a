"""Fuzz `gitsync validate` for a while: mutated example files must never crash it.

Run: .venv/bin/python benchmarks/fuzz_validate.py [--seconds 60] [--seed N]

Each round takes an example file, mutates its bytes (flips, deletions, insertions of YAML
syntax and odd characters, truncation, repetition) and validates it through the CLI. Every
round must end with exit code 0 or 1, no traceback, and every problem line as
`path:line:col: message`. Every mutated document that reads as YAML also goes to the compiled
schema gate, which must never pass what jsonschema rejects. Prints rounds per second and how
the outcomes split.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from gitsync.cli import cli
from gitsync.files import ReadError, decode_document
from gitsync.schema_check import compiled_gate, validator

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = [
    b":",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"!!python/none",
    b"\t",
    b"\x00",
    b"\xff",
    b"\xe9",
    b"'",
    b'"',
    b"#",
    b"\n  ",
    b"? ",
    b"|\n",
    b"${x}",
    b"0 0 0 * * ? *",
    b"depends_on: [x]",
    b"--- \n",
    b"\r\n",
    b"~",
    b"1e999",
]
LINE = re.compile(r"^.+:\d+:\d+: .+$")


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        kind = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if kind == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif kind == 1:
            del out[at : at + rng.randint(1, 20)]
        elif kind == 2:
            out[at:at] = rng.choice(SNIPPETS)
        elif kind == 3:
            del out[at:]
        else:
            piece = bytes(out[at : at + rng.randint(1, 200)])
            out[at:at] = piece * rng.randint(1, 50)
    return bytes(out)


NO_CACHE = {"GITSYNC_NO_CACHE": "1"}  # every round must really validate


def gate_passes_wrongly(data: bytes) -> bool | None:
    """None when the bytes are no document; else whether the gate passed what jsonschema
    rejects."""
    try:
        doc, problems = decode_document(data)
    except ReadError:
        return None
    if problems or not isinstance(doc.data, dict):
        return None
    if not compiled_gate()(doc.data):
        return False
    return any(True for _ in validator().iter_errors(doc.data))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sources = [p.read_bytes() for p in sorted((ROOT / "examples" / "flows").rglob("*.yaml"))]
    runner = CliRunner()
    outcomes = {0: 0, 1: 0}
    rounds = gated = 0
    deadline = time.monotonic() + args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        while time.monotonic() < deadline:
            data = mutate(rng.choice(sources), rng)
            path.write_bytes(data)
            result = runner.invoke(
                cli, ["validate", str(path)], catch_exceptions=True, env=NO_CACHE
            )
            rounds += 1
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                kept = Path(tmp).parent / f"gitsync-fuzz-crash-{rounds}.yaml"
                kept.write_bytes(data)
                raise SystemExit(f"crash on round {rounds} ({kept}): {result.exception!r}")
            if result.exit_code not in (0, 1) or "Traceback" in result.output:
                raise SystemExit(f"round {rounds}: exit {result.exit_code}\n{result.output}")
            problems = result.output.splitlines()[:-1]
            bad = [line for line in problems if not LINE.match(line)]
            if bad:
                raise SystemExit(f"round {rounds}: not path:line:col: {bad[0]!r}")
            outcomes[result.exit_code] += 1
            wrong = gate_passes_wrongly(data)
            if wrong:
                kept = Path(tmp).parent / f"gitsync-fuzz-gate-{rounds}.yaml"
                kept.write_bytes(data)
                raise SystemExit(f"round {rounds}: the gate passed what jsonschema rejects: {kept}")
            gated += wrong is not None
    print(
        f"fuzzed {rounds} files in {args.seconds:.0f} s ({rounds / args.seconds:.0f}/s): "
        f"{outcomes[1]} rejected with path:line:col messages, {outcomes[0]} still valid, "
        f"0 crashes; {gated} documents through the schema gate, none passed wrongly"
    )


if __name__ == "__main__":
    main()
