"""The validate command: whole trees, cross-file checks, formats, exit codes, no tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import EXAMPLES, run_cli

GOOD = "tasks:\n  - name: a\n    command: echo a\n"


def test_examples_are_valid_and_realistic() -> None:
    result = run_cli("validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    files = sorted(EXAMPLES.rglob("*.yaml"))
    assert len(files) >= 6
    assert len({f.parent for f in files}) >= 3
    assert all(f.read_text().startswith("# yaml-language-server: $schema=") for f in files)


def test_default_root_is_flows_then_gitsync_yaml(in_tmp: Path) -> None:
    result = run_cli("validate")
    assert result.exit_code == 1
    assert "no such file or folder: " in result.output
    shutil.copytree(EXAMPLES, in_tmp / "flows")
    assert run_cli("validate").exit_code == 0
    (in_tmp / "gitsync.yaml").write_text("flows: elsewhere\n")
    (in_tmp / "elsewhere").mkdir()
    (in_tmp / "elsewhere" / "x.yaml").write_text("tasks: 3\n")
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.output.startswith(
        "elsewhere/x.yaml:1:8: tasks: expected a list, got an integer 3"
    )


def test_every_problem_in_every_file_is_reported(in_tmp: Path) -> None:
    (in_tmp / "flows" / "a").mkdir(parents=True)
    (in_tmp / "flows" / "a" / "one.yaml").write_text("tasks:\n  - name: x\n    timeout: 0\n")
    (in_tmp / "flows" / "two.yaml").write_text("tasks: [}\n")
    (in_tmp / "flows" / "three.yaml").write_text(GOOD)
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "flows/a/one.yaml:2:5: tasks[0]: missing required key 'command'",
        "flows/a/one.yaml:3:14: tasks[0].timeout: must be at least 1, got 0",
        "flows/two.yaml:1:9: invalid YAML: while parsing a flow node did not find expected "
        "node content",
        "3 problems in 2 of 3 files",
    ]


def test_a_dependency_problem_points_at_its_own_line(in_tmp: Path) -> None:
    """The model sorts a task's upstreams; the problem must still name the file's line."""
    (in_tmp / "flows").mkdir()
    (in_tmp / "flows" / "w.yaml").write_text(
        "tasks:\n  - name: a\n    command: 'true'\n  - name: b\n    command: 'true'\n"
        "    depends_on:\n      - zz_unknown\n      - a\n      - a\n"
    )
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [
        "flows/w.yaml:7:9: task 'b' depends on unknown task 'zz_unknown'",
        "flows/w.yaml:9:9: task 'b' lists 'a' twice in depends_on",
    ]


def test_same_name_in_two_directories_is_rejected(in_tmp: Path) -> None:
    for d in ("sales", "ops"):
        (in_tmp / "flows" / d).mkdir(parents=True)
        (in_tmp / "flows" / d / "daily.yaml").write_text(GOOD)
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        "flows/sales/daily.yaml:1:1: workflow 'daily' is also defined by flows/ops/daily.yaml "
        "(workflow names must be unique in the tree)"
    )


def test_names_the_service_rejects(in_tmp: Path) -> None:
    bad_dir = in_tmp / "flows" / ("d" * 129)
    bad_dir.mkdir(parents=True)
    (bad_dir / "ok.yaml").write_text(GOOD)
    (in_tmp / "flows" / "bad name .yaml").write_text(GOOD)
    result = run_cli("validate")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("flows/bad name .yaml:1:1: workflow name 'bad name ' is not a name")
    assert lines[1].startswith(f"flows/{'d' * 129}/ok.yaml:1:1: directory name 'ddd")


def test_file_over_one_mebibyte(in_tmp: Path) -> None:
    (in_tmp / "flows").mkdir()
    (in_tmp / "flows" / "big.yaml").write_text(GOOD + "# " + "x" * (1024 * 1024) + "\n")
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.output.startswith("flows/big.yaml:1:1: file is 1,048,")
    assert "the limit is 1,048,576 (1 MiB)" in result.output


def test_json_output(in_tmp: Path) -> None:
    (in_tmp / "flows").mkdir()
    (in_tmp / "flows" / "x.yaml").write_text("tasks:\n  - name: a\n    command: 1\n")
    result = run_cli("validate", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.output) == {
        "format_version": 1,
        "ok": False,
        "files": 1,
        "problems": [
            {
                "path": "flows/x.yaml",
                "line": 3,
                "column": 14,
                "message": "tasks[0].command: expected a string, got an integer 1",
            }
        ],
    }


def test_a_single_file_inside_the_flows_root_keeps_its_directory(in_tmp: Path) -> None:
    shutil.copytree(EXAMPLES, in_tmp / "flows")
    result = run_cli("validate", "flows/sales/daily/sales_etl.yaml")
    assert result.exit_code == 0
    assert result.output == "1 file valid\n"


def test_usage_errors_exit_1_not_2() -> None:
    result = run_cli("validate", "--format", "xml")
    assert result.exit_code == 1
    assert "Invalid value for '--format'" in result.output
    assert run_cli("no-such-command").exit_code == 1


def test_binary_garbage_never_crashes(in_tmp: Path) -> None:
    (in_tmp / "flows").mkdir()
    for i, blob in enumerate(
        [
            b"\x00\x01\x02",
            b"\xff\xfe",
            b"{{{{",
            b"key: [\n",
            b"- - - -",
            b"!!binary AAAA",
            b"? [a]\n: b\n",
            b"&a [*a]",
            b"tasks: *nope",
        ]
    ):
        (in_tmp / "flows" / f"f{i}.yaml").write_bytes(blob)
    result = run_cli("validate")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.endswith("9 problems in 9 of 9 files\n")


def test_a_line_gitsync_writes_cannot_come_from_a_file(in_tmp: Path) -> None:
    (in_tmp / "flows").mkdir()
    for marker in ("[gitsync target: dev]", "[managed by gitsync]"):
        text = f'description: "hello\\n\\n{marker}"\ntasks:\n  - name: t\n    command: x\n'
        (in_tmp / "flows" / "w.yaml").write_text(text)
        result = run_cli("validate")
        assert result.exit_code == 1, result.output
        assert result.output.startswith("flows/w.yaml:1:14: description: a line starting")


def test_names_gitsync_reserves_for_itself(in_tmp: Path) -> None:
    flows = in_tmp / "flows"
    flows.mkdir()
    reserved = ["a__retired_1001", "x__gitsync_replace", "__gitsync_lock__team"]
    for name in [*reserved, "a__retired_", "a__retired_x", "__retired_5", "gitsync_replace"]:
        (flows / f"{name}.yaml").write_text(GOOD)
    result = run_cli("validate")
    assert result.exit_code == 1, result.output
    flagged = sorted(
        line.split(".yaml:1:1: ")[0].removeprefix("flows/")
        for line in result.output.splitlines()
        if "reserved for gitsync" in line
    )
    assert flagged == sorted(reserved), result.output
    assert "flows/a__retired_1001.yaml:1:1: workflow name 'a__retired_1001' has the form" in (
        result.output
    )


def test_a_blank_command_is_a_problem_at_its_line(in_tmp: Path) -> None:
    flows = in_tmp / "flows"
    flows.mkdir()
    (flows / "block.yaml").write_text("tasks:\n  - name: a\n    command: |\n\n")
    (flows / "spaces.yaml").write_text('tasks: [{name: a, command: "  \\t "}]\n')
    (flows / "other.yaml").write_text("tasks: [{name: a, type: PYTHON, command: ''}]\n")
    result = run_cli("validate", "flows")
    assert result.exit_code == 1
    lines = sorted(result.output.splitlines()[:-1])
    assert lines == [
        "flows/block.yaml:3:14: tasks[0].command is empty: nothing to run",
        "flows/spaces.yaml:1:28: tasks[0].command is empty: nothing to run",
    ], result.output


def test_nan_and_infinity_are_problems_at_their_place(in_tmp: Path) -> None:
    """NaN never equals itself: a workflow holding one would be replaced on every apply."""
    flows = in_tmp / "flows"
    flows.mkdir()
    (flows / "cpu.yaml").write_text(
        "tasks:\n  - name: a\n    command: x\n    run_mode: {cpu: .nan}\n"
    )
    (flows / "time.yaml").write_text("tasks: [{name: a, command: x, timeout: -.inf}]\n")
    result = run_cli("validate", "flows")
    assert result.exit_code == 1
    assert sorted(result.output.splitlines()[:-1]) == [
        "flows/cpu.yaml:4:21: not a finite number (.nan and .inf cannot be sent)",
        "flows/time.yaml:1:40: not a finite number (.nan and .inf cannot be sent)",
    ], result.output
