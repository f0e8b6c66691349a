"""Release hygiene: one version everywhere, and shell completion that really completes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version as installed_version
from pathlib import Path

import pytest

import gitsync
from tests.conftest import ROOT, run_cli

GITSYNC = shutil.which("gitsync", path=str(Path(sys.executable).parent)) or "gitsync"
SEMVER = r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?"


def changelog_versions() -> list[str]:
    text = (ROOT / "CHANGELOG.md").read_text("utf-8")
    return re.findall(rf"^## \[({SEMVER})\] - ", text, re.MULTILINE)


def test_the_version_is_written_once_and_read_everywhere() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "gitsync.__version__"}
    assert re.fullmatch(SEMVER, gitsync.__version__)

    assert changelog_versions()[0] == gitsync.__version__  # the newest entry is this version
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.output == f"gitsync, version {gitsync.__version__}\n"
    assert installed_version("gitsync") == gitsync.__version__, "reinstall: pip install -e ."


def test_the_changelog_keeps_its_form() -> None:
    text = (ROOT / "CHANGELOG.md").read_text("utf-8")
    versions = changelog_versions()
    assert versions and len(set(versions)) == len(versions)
    for found in versions:  # every version heading has its link at the bottom
        assert re.search(rf"^\[{re.escape(found)}\]: \S+/v{re.escape(found)}$", text, re.M)
    headings = re.findall(r"^## \[[^\]]+\] - (.+)$", text, re.MULTILINE)
    assert all(h == "Unreleased" or re.fullmatch(r"\d{4}-\d{2}-\d{2}", h) for h in headings)


def test_the_readme_pre_commit_rev_is_the_tag_of_this_version() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    revs = re.findall(r"^\s+rev: (\S+)", readme, re.MULTILINE)
    assert revs == [f"v{gitsync.__version__}"]


def complete(shell: str, words: str, cword: str) -> str:
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": cword,
        "_GITSYNC_COMPLETE": f"{shell}_complete",
    }
    done = subprocess.run([GITSYNC], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_for_each_shell_is_clicks_own(shell: str) -> None:
    result = run_cli("completion", shell)
    assert result.exit_code == 0
    assert f"_GITSYNC_COMPLETE={shell}_complete" in result.output
    env = {**os.environ, "_GITSYNC_COMPLETE": f"{shell}_source"}
    done = subprocess.run([GITSYNC], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == result.output


def test_completion_of_subcommands_over_clicks_protocol() -> None:
    assert complete("bash", "gitsync pl", "1").split() == ["plain,plan"]
    assert complete("bash", "gitsync ci c", "2").split() == ["plain,comment"]
    kind, name, helped = complete("zsh", "gitsync ap", "1").splitlines()
    assert (kind, name) == ("plain", "apply")
    assert helped.startswith("Make the target match the files")
    assert complete("fish", "gitsync val", "val").splitlines() == [
        "plain,validate\tCheck workflow files offline: YAML,..."
    ]
    assert "plain,--detailed-exitcode" in complete("bash", "gitsync plan --det", "2").split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_itself_completes_with_the_script(tmp_path: Path) -> None:
    script = tmp_path / "gitsync.bash"
    script.write_text(run_cli("completion", "bash").output)
    probe = (
        f"source {script}; COMP_WORDS=(gitsync pl); COMP_CWORD=1; "
        '_gitsync_completion gitsync pl gitsync; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{Path(GITSYNC).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "--norc", "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "plan\n"


def test_an_unknown_shell_is_a_usage_error_exit_1() -> None:
    result = run_cli("completion", "powershell")
    assert result.exit_code == 1
    assert "'powershell' is not one of 'bash', 'zsh', 'fish'" in result.output
