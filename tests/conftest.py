from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitsync.cli import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "flows"
CASES = Path(__file__).resolve().parent / "cases"
SPEC_SAMPLES = Path(__file__).resolve().parent / "data" / "spec"


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path
