"""`gitsync ci fetch-plan`: the plan reviewed on the merged pull request, or a clear refusal,
against the fake GitHub / GitLab (tests/forge_fake.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests import test_ci_comment
from tests.conftest import run_cli
from tests.forge_fake import TOKEN, FakeForge
from tests.test_ci_templates import HEAD, MERGED, as_github, as_gitlab

fake, clean_env = test_ci_comment.fake, test_ci_comment.clean_env  # the same fixtures
PLAN = b'{"format": "gitsync saved plan", "changes": []}'
Fake = tuple[FakeForge, str]


def merged_pull(forge: FakeForge) -> None:
    forge.pulls[MERGED] = [
        {"number": 5, "merged_at": None, "merge_commit_sha": MERGED, "head": {"sha": "x" * 40}},
        {"number": 7, "merged_at": "2026-12-01", "merge_commit_sha": MERGED, "head": {"sha": HEAD}},
    ]


def fetch(where: Path, *extra: str) -> tuple[int, str, Path]:
    result = run_cli("ci", "fetch-plan", str(where / "plan.json"), "--key", "prod", *extra)
    return result.exit_code, result.output, where / "plan.json"


def test_github_takes_the_merged_pull_requests_artifact(
    fake: Fake, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    as_github(monkeypatch, url, clean_env, "push")
    merged_pull(forge)
    forge.pull_request_run(url, "d4" * 20, "gitsync-plan-prod", b'{"other": "commit"}')
    forge.pull_request_run(url, HEAD, "gitsync-plan-dev", b'{"other": "target"}')
    forge.pull_request_run(url, HEAD, "gitsync-plan-prod", PLAN)
    code, output, saved = fetch(clean_env)
    assert code == 0, output
    assert output == f"Saved the plan reviewed for {MERGED[:12]} to {saved}\n"
    assert saved.read_bytes() == PLAN
    asked = [r.path for r in forge.requests]
    assert asked[0] == f"/repos/acme/flows/commits/{MERGED}/pulls"
    assert asked[-2:] == [asked[-2], f"/blobs/{asked[-2].split('/')[-2]}"]  # followed redirect


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        ("nothing", f"commit {MERGED[:12]} was not merged from a pull or merge request"),
        ("no artifact", "pull request #7 has no saved plan gitsync-plan-prod from a successful"),
        ("expired", "pull request #7 has no saved plan gitsync-plan-prod"),
        ("not a zip", "the plan artifact is not a zip holding plan.json"),
        ("zip without plan", "the plan artifact is not a zip holding plan.json"),
        ("not json", f"the saved plan found for {MERGED[:12]} is not JSON"),
    ],
)
def test_github_refuses_when_nothing_was_reviewed(
    fake: Fake, clean_env: Path, monkeypatch: pytest.MonkeyPatch, setup: str, said: str
) -> None:
    forge, url = fake
    as_github(monkeypatch, url, clean_env, "push")
    if setup != "nothing":
        merged_pull(forge)
    if setup in ("expired", "not a zip", "zip without plan", "not json"):
        forge.pull_request_run(url, HEAD, "gitsync-plan-prod", b"not json" * (setup == "not json"))
        (artifact_id,) = forge.blobs
        forge.artifacts[next(iter(forge.artifacts))][0]["expired"] = setup == "expired"
        if setup == "not a zip":
            forge.blobs[artifact_id] = b"<html>login</html>"
        if setup == "zip without plan":
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("other.json", PLAN)
            forge.blobs[artifact_id] = buffer.getvalue()
    code, output, saved = fetch(clean_env)
    assert code == 1
    assert said in output and output.startswith("error: ")
    assert not saved.exists()


def test_gitlab_takes_the_merge_requests_plan_head_or_merged_results(
    fake: Fake, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    as_gitlab(monkeypatch, url, "push")
    forge.pulls[MERGED] = [
        {"iid": 2, "state": "closed", "merge_commit_sha": MERGED},
        {"iid": 3, "state": "merged", "merge_commit_sha": None, "squash_commit_sha": MERGED},
    ]
    forge.job_files[("refs/merge-requests/3/merge", "gitsync-plan")] = PLAN
    code, output, saved = fetch(clean_env)
    assert code == 0, output
    assert saved.read_bytes() == PLAN
    raw = [r.path for r in forge.requests if "/raw/" in r.path]
    assert raw == [
        "/api/v4/projects/42/jobs/artifacts/refs/merge-requests/3/head/raw/plan.json",
        "/api/v4/projects/42/jobs/artifacts/refs/merge-requests/3/merge/raw/plan.json",
    ]
    assert all(r.headers["private-token"] == TOKEN for r in forge.requests)


def test_gitlab_without_a_saved_plan_refuses(
    fake: Fake, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    as_gitlab(monkeypatch, url, "push")
    forge.pulls[MERGED] = [{"iid": 3, "state": "merged", "merge_commit_sha": MERGED}]
    code, output, saved = fetch(clean_env)
    assert code == 1
    assert "merge request !3 has no saved plan from a successful gitsync-plan job" in output
    assert not saved.exists()


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_a_refused_token_is_named_never_shown(
    fake: Fake, clean_env: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    _, url = fake
    if kind == "github":
        as_github(monkeypatch, url, clean_env, "push")
        monkeypatch.setenv("GITHUB_TOKEN", "expired-token")
    else:
        as_gitlab(monkeypatch, url, "push")
        monkeypatch.setenv("GITSYNC_GITLAB_TOKEN", "expired-token")
    code, output, _ = fetch(clean_env)
    assert code == 1
    assert "answered 401" in output and "the token was refused" in output
    assert "expired-token" not in output


def test_the_commit_must_be_known(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    as_github(monkeypatch, "http://127.0.0.1:9", clean_env, "push")
    monkeypatch.delenv("GITHUB_SHA")
    code, output, _ = fetch(clean_env)
    assert code == 1 and "GITHUB_SHA is not set" in output
