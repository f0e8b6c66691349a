"""The CI templates in ci/: every command they run exists, and their jobs' own command lines,
taken from the YAML, run in order against the embedded engine and a fake GitHub / GitLab."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

import gitsync
from gitsync.cli import cli
from gitsync.forge_plans import GITLAB_JOB, PLAN_NAME, artifact_name
from tests.conftest import ROOT, Api, run_cli
from tests.forge_fake import TOKEN, FakeForge, RunningFake
from tests.test_ci_comment import CI_VARIABLES, GITHUB_THREAD, GITLAB_THREAD

GITHUB = ROOT / "ci" / "github" / "gitsync.yml"
GITLAB = ROOT / "ci" / "gitlab" / "gitsync.gitlab-ci.yml"
INSTALL = 'pip install --quiet "$GITSYNC_INSTALL"'
# what each job runs, in the order a change goes through them
LIFECYCLE = {
    "validate": ["gitsync validate"],
    "plan": [
        "gitsync plan --quiet -o markdown --out plan.json > plan.md",
        "gitsync ci comment plan.md",
    ],
    "apply": ["gitsync ci fetch-plan plan.json", "gitsync apply --quiet plan.json"],
    "drift": ["gitsync plan --quiet --detailed-exitcode"],
}
MERGED, HEAD = "a1" * 20, "b2" * 20


def github_jobs() -> dict[str, list[str]]:
    jobs = yaml.safe_load(GITHUB.read_text("utf-8"))["jobs"]
    return {name: [s["run"] for s in job["steps"] if "run" in s] for name, job in jobs.items()}


def gitlab_jobs() -> dict[str, list[str]]:
    document = yaml.safe_load(GITLAB.read_text("utf-8"))
    before = document["default"]["before_script"]
    return {
        name.removeprefix("gitsync-"): [*before, *job["script"]]
        for name, job in document.items()
        if isinstance(job, dict) and "script" in job
    }


def gitsync_lines(jobs: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: [c for c in lines if c != INSTALL] for name, lines in jobs.items()}


@pytest.mark.parametrize("jobs", [github_jobs, gitlab_jobs], ids=["github", "gitlab"])
def test_each_template_runs_the_tested_commands_and_only_those(jobs: Any) -> None:
    found = jobs()
    assert all(lines[0] == INSTALL for lines in found.values())
    assert gitsync_lines(found) == LIFECYCLE


def command_of(line: str) -> tuple[list[str], str | None]:
    """A template's line as gitsync's arguments, and the file its output goes to."""
    words = shlex.split(line)
    assert words[0] == "gitsync", line
    if ">" in words:
        at = words.index(">")
        return words[1:at], words[at + 1]
    return words[1:], None


@pytest.mark.parametrize("line", sorted({c for cs in LIFECYCLE.values() for c in cs}))
def test_every_subcommand_and_option_exists(line: str, in_tmp: Path) -> None:
    """click parses each line with gitsync's own command group: an unknown subcommand, option
    or choice fails here, not in someone's pipeline."""
    (in_tmp / "plan.md").write_text("a plan")  # the file an argument names must exist
    args, _ = command_of(line)
    group: click.Group = cli
    while args and isinstance(group.get_command(click.Context(group), args[0]), click.Group):
        group = group.get_command(click.Context(group), args.pop(0))  # type: ignore[assignment]
    command = group.get_command(click.Context(group), args[0])
    assert command is not None, line
    with command.make_context(args[0], args[1:]):  # raises on anything it does not know
        pass


def test_the_templates_install_this_version_and_name_the_artifact_apply_looks_for() -> None:
    for path in (GITHUB, GITLAB):
        pins = re.findall(r'GITSYNC_INSTALL: "gitsync @ git\+\S+@v(\S+)"', path.read_text())
        assert pins == [gitsync.__version__], path
    plan_job = yaml.safe_load(GITHUB.read_text())["jobs"]["plan"]
    upload = next(s for s in plan_job["steps"] if s.get("uses", "").startswith("actions/upload"))
    assert upload["with"]["path"].split() == [PLAN_NAME, "plan.md"]
    assert upload["with"]["name"] == artifact_name("${{ env.GITSYNC_TARGET }}")
    gitlab_plan = yaml.safe_load(GITLAB.read_text())[GITLAB_JOB]
    assert PLAN_NAME in gitlab_plan["artifacts"]["paths"]


@pytest.mark.parametrize(
    ("path", "schema"),
    [(GITHUB, "vendor.github-workflows"), (GITLAB, "vendor.gitlab-ci")],
    ids=["github", "gitlab"],
)
def test_each_template_is_valid_for_its_ci_service(path: Path, schema: str) -> None:
    """The services' own schemas, as check-jsonschema ships them (offline): a misspelt key or
    a wrong type fails here rather than on the first push of whoever copied the file."""
    tool = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(tool), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_template_prints_a_secret() -> None:
    for path in (GITHUB, GITLAB):
        text = path.read_text()
        assert not re.search(r"(echo|printf|cat).*(SECRET|TOKEN|ACCESS_KEY)", text), path
        assert "set -x" not in text


# -- the jobs, run as written, against the engine -------------------------------------------


@pytest.fixture
def forge(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeForge, str]]:
    for name in CI_VARIABLES:
        if name != "GITSYNC_TARGET":
            monkeypatch.delenv(name, raising=False)
    fake = FakeForge()
    with RunningFake(fake) as running:
        yield fake, running.url


def run_job(lines: list[str], where: Path) -> list[Any]:
    results = []
    for line in lines:
        args, out = command_of(line)
        result = run_cli(*args)
        if out is not None:
            (where / out).write_text(result.stdout)
        results.append(result)
    return results


def as_github(monkeypatch: pytest.MonkeyPatch, url: str, repo: Path, event: str) -> None:
    (repo.parent / "event.json").write_text(
        json.dumps(
            {"pull_request": {"number": 7}}
            if event == "pull_request"
            else {"ref": "refs/heads/main"}
        )
    )
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": url,
        "GITHUB_REPOSITORY": "acme/flows",
        "GITHUB_EVENT_PATH": str(repo.parent / "event.json"),
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_SHA": MERGED if event == "push" else "c3" * 20,
    }.items():
        monkeypatch.setenv(name, value)


def as_gitlab(monkeypatch: pytest.MonkeyPatch, url: str, event: str) -> None:
    for name, value in {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": f"{url}/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "3",
        "GITSYNC_GITLAB_TOKEN": TOKEN,
        "CI_COMMIT_SHA": MERGED if event == "push" else HEAD,
    }.items():
        monkeypatch.setenv(name, value)
    if event == "push":
        monkeypatch.delenv("CI_MERGE_REQUEST_IID")


def delete_behind_gitsyncs_back(api: Api, name: str) -> None:
    """Someone deletes a managed workflow in the console."""
    found = {f["flowName"]: int(f["flowId"]) for f in api.data("POST", "flows", "search", {})}  # type: ignore[attr-defined]
    api.data("GET", "flows", "delete", flowId=found[name])


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_jobs_lines_take_a_change_from_pull_request_to_applied(
    kind: str,
    example_repo: Path,
    api: Api,
    forge: tuple[FakeForge, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = forge
    jobs = gitsync_lines(github_jobs() if kind == "github" else gitlab_jobs())
    key = "test"  # GITSYNC_TARGET of the example repository

    def as_ci(event: str) -> None:
        if kind == "github":
            as_github(monkeypatch, url, example_repo, event)
        else:
            as_gitlab(monkeypatch, url, event)

    as_ci("push")
    (validated,) = run_job(jobs["validate"], example_repo)
    assert validated.exit_code == 0, validated.output

    as_ci("pull_request")
    for _ in range(2):  # two pushes to the pull request: one comment, updated
        planned, commented = run_job(jobs["plan"], example_repo)
        assert planned.exit_code == 0, planned.output
        assert commented.exit_code == 0, commented.output
    plan_md = (example_repo / "plan.md").read_text()
    assert "create" in plan_md and "sales_etl" in plan_md
    thread = fake.comments[GITHUB_THREAD if kind == "github" else GITLAB_THREAD]
    assert [c["body"] for c in thread] == [f"<!-- gitsync-plan:{key} -->\n{plan_md}"]
    saved = (example_repo / PLAN_NAME).read_bytes()

    # what the CI service keeps between the runs: the plan job's artifact
    (example_repo / PLAN_NAME).unlink()
    if kind == "github":
        fake.pulls[MERGED] = [
            {
                "number": 7,
                "merged_at": "2026-12-01T06:00:00Z",
                "merge_commit_sha": MERGED,
                "head": {"sha": HEAD},
            }
        ]
        fake.pull_request_run(url, HEAD, artifact_name(key), saved)
    else:
        fake.pulls[MERGED] = [{"iid": 3, "state": "merged", "merge_commit_sha": MERGED}]
        fake.job_files[("refs/merge-requests/3/head", GITLAB_JOB)] = saved

    as_ci("push")
    fetched, applied = run_job(jobs["apply"], example_repo)
    assert fetched.exit_code == 0, fetched.output
    assert (example_repo / PLAN_NAME).read_bytes() == saved
    assert applied.exit_code == 0, applied.output

    (drift,) = run_job(jobs["drift"], example_repo)
    assert drift.exit_code == 0, drift.output  # the target is what was reviewed

    delete_behind_gitsyncs_back(api, "health_check")
    (drift,) = run_job(jobs["drift"], example_repo)
    assert drift.exit_code == 2, drift.output  # the target and the branch differ: job fails
    assert "health_check" in drift.stdout
