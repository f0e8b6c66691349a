"""The shipped hook, installed by pre-commit itself from this repository, in a real git repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

PRE_COMMIT = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs gitsync as a git checkout")
def test_hook_passes_on_examples_and_fails_on_a_broken_file(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PRE_COMMIT, "try-repo", str(ROOT), "gitsync-validate", "--all-files"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    ok = hook()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "gitsync validate" in ok.stdout and "Passed" in ok.stdout

    broken = repo / "flows" / "ops" / "hourly" / "health_check.yaml"
    broken.write_text(
        broken.read_text().replace(
            "timeout: 30\n    retries: 0\n  - name: load",
            "timeout: thirty\n    retries: 0\n  - name: load",
        )
    )
    _git(repo, "add", ".")
    failed = hook()
    assert failed.returncode == 1
    assert (
        "flows/ops/hourly/health_check.yaml:12:14: tasks[0].timeout: expected an integer, "
        'got a string "thirty"'
    ) in failed.stdout
