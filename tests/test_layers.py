"""The architecture, checked: which modules may import what (a short ast test)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gitsync"


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): imports(p) for p in PACKAGE.rglob("*.py")}


def test_only_the_cli_talks_to_the_terminal() -> None:
    users = sorted(
        name
        for name, found in modules().items()
        if any(i == "click" or i.startswith("click.") for i in found)
    )
    assert users and all(name.startswith("cli/") for name in users), users


def test_the_planner_is_pure() -> None:
    found = modules()["plan.py"]
    for io in (
        "httpx",
        "gitsync.client",
        "gitsync.remote",
        "gitsync.files",
        "sqlite3",
        "subprocess",
        "os",
    ):
        assert io not in found, io


def test_the_engine_does_not_use_the_client_side() -> None:
    for name, found in modules().items():
        if name.startswith("engine/") and name != "engine/faults.py":
            assert not found & {
                "gitsync.client",
                "gitsync.remote",
                "gitsync.plan",
                "gitsync.sync",
                "gitsync.cli",
            }, name


def test_only_protocol_and_codec_know_the_wire() -> None:
    """Paths and actions live in protocol.py: no other module spells the URL prefix."""
    for path in PACKAGE.rglob("*.py"):
        if path.name != "protocol.py":
            assert "batch-processing-service/v2.1" not in path.read_text(), path
