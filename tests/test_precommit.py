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


IDENTITY = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **IDENTITY},
        check=True,
        capture_output=True,
        input=stdin,
    )
    return done.stdout.decode()


def _this_checkout(tmp_path: Path) -> tuple[Path, str]:
    """A clone of this repository with its uncommitted changes committed, and that commit:
    what `pre-commit try-repo` would install, but as a repo and rev that a config names, so
    pre-commit builds the hook's environment once for both runs (try-repo builds it anew for
    every run, 15 s each)."""
    shadow = tmp_path / "shadow"
    _git(tmp_path, "clone", "-q", str(ROOT), str(shadow))
    changes = subprocess.run(
        ["git", "diff", "HEAD", "--binary"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    if changes:
        _git(shadow, "apply", "--index", "-", stdin=changes)
        _git(shadow, "commit", "-q", "-m", "uncommitted changes")
    return shadow, _git(shadow, "rev-parse", "HEAD").strip()


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs gitsync as a git checkout")
def test_hook_passes_on_examples_and_fails_on_a_broken_file(tmp_path: Path) -> None:
    env = {**os.environ, **IDENTITY, "PRE_COMMIT_HOME": str(tmp_path / "cache")}
    shadow, rev = _this_checkout(tmp_path)
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {shadow}\n    rev: {rev}\n    hooks:\n      - id: gitsync-validate\n"
    )
    _git(repo, "init", "-q")
    _git(repo, "add", ".")

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PRE_COMMIT, "run", "gitsync-validate", "--all-files"],
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
