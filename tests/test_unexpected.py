"""A bug in gitsync is one line naming a log file that holds the traceback, exit 1; never a
traceback on the terminal. Ctrl-C stays 130."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitsync.cli import files as cli_files
from tests.conftest import run_cli


def test_an_unexpected_error_is_one_line_and_a_log_file(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("an injected bug")

    monkeypatch.setattr(cli_files, "validate_paths", broken)  # a fault: no real path raises this
    (in_tmp / "flows").mkdir()
    result = run_cli("validate")
    assert result.exit_code == 1
    log = Path(os.environ["GITSYNC_CACHE_DIR"]) / "gitsync.log"
    assert result.output == (
        f"error: unexpected RuntimeError: a bug in gitsync; the details are in {log}\n"
    )
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "RuntimeError: an injected bug" in text


def test_ctrl_c_stays_130(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_files, "validate_paths", interrupted)
    (in_tmp / "flows").mkdir()
    result = run_cli("validate")
    assert result.exit_code == 130 and "Traceback" not in result.output
