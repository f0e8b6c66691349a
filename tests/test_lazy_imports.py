"""What a command imports only when it needs it: jsonschema writes messages for documents the
compiled gate does not pass, so files found in the validation cache never need it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from pathlib import Path
from gitsync.cache import ValidationCache
from gitsync.validate import validate_paths
result = validate_paths([Path(sys.argv[1])], cache=ValidationCache(Path(sys.argv[2])))
print(len(result.workflows), len(result.problems), "jsonschema" in sys.modules)
for problem in result.problems:
    print(problem)
"""


def validate_in_a_new_process(flows: Path, cache: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(flows), str(cache)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.splitlines()


def test_the_command_line_loads_without_jsonschema() -> None:
    code = "import sys, gitsync.cli; print('jsonschema' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"


def test_cached_files_need_no_jsonschema_and_bad_ones_still_get_messages(tmp_path: Path) -> None:
    flows, cache = tmp_path / "flows", tmp_path / "cache"
    flows.mkdir()
    (flows / "good.yaml").write_text("tasks:\n  - {name: a, command: 'true'}\n")
    assert validate_in_a_new_process(flows, cache)[0] == "1 0 False"  # the gate passed it
    assert validate_in_a_new_process(flows, cache)[0] == "1 0 False"  # from the cache
    (flows / "bad.yaml").write_text("tasks:\n  - {name: a, comand: 'true'}\n")
    lines = validate_in_a_new_process(flows, cache)
    assert lines[0].startswith("1 ") and lines[0].endswith(" True")
    assert any("bad.yaml:2:" in line and "unknown key 'comand'" in line for line in lines[1:])
