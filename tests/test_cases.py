"""Data-driven: every file under cases/invalid has the exact output in its .expected file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CASES, run_cli

INVALID = sorted(p for p in (CASES / "invalid").iterdir() if p.suffix != ".expected")
VALID = sorted((CASES / "valid").rglob("*.yaml"))


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 50


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.name)
def test_invalid_case_output_is_exact(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case.parent)
    expected = (
        case.with_suffix(".expected") if case.is_file() else case.parent / f"{case.name}.expected"
    )
    result = run_cli("validate", case.name)
    assert result.exit_code == 1
    assert result.output == expected.read_text("utf-8")


@pytest.mark.parametrize("case", VALID, ids=lambda p: p.name)
def test_valid_case_passes(case: Path) -> None:
    result = run_cli("validate", str(case))
    assert result.exit_code == 0, result.output
    assert result.output == "1 file valid\n"


def test_valid_tree_passes_as_a_whole() -> None:
    result = run_cli("validate", str(CASES / "valid"))
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"{len(VALID)} files valid\n")


def test_every_schema_property_has_help_for_editors() -> None:
    from gitsync.schema_check import schema

    missing = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                if "description" not in sub:
                    missing.append(f"{where}.{name}")
            for key, value in node.items():
                if key != "if":  # conditions, not properties a user writes
                    walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(schema(), "schema")
    assert missing == []
    assert schema()["$schema"].endswith("2020-12/schema") and schema()["$id"]
