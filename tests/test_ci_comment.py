"""`gitsync ci comment`: the plan as one pull-request comment, against a local fake of the
GitHub and GitLab APIs (tests/forge_fake.py) that records every request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitsync.forge import GITHUB_LIMIT, comment_body, marker
from tests.conftest import refusing_port, run_cli
from tests.forge_fake import TOKEN, FakeForge, RunningFake

GITHUB_THREAD = "/repos/acme/flows/issues/7/comments"
GITLAB_THREAD = "/api/v4/projects/42/merge_requests/3/notes"
CI_VARIABLES = [
    *("GITHUB_ACTIONS", "GITHUB_API_URL", "GITHUB_REPOSITORY", "GITHUB_EVENT_PATH"),
    *("GITHUB_TOKEN", "GITSYNC_PR", "GITLAB_CI", "CI_API_V4_URL", "CI_PROJECT_ID"),
    *("CI_MERGE_REQUEST_IID", "GITSYNC_GITLAB_TOKEN", "GITSYNC_TARGET"),
]


@pytest.fixture
def fake() -> Iterator[tuple[FakeForge, str]]:
    forge = FakeForge()
    with RunningFake(forge) as running:
        yield forge, running.url


@pytest.fixture
def clean_env(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return in_tmp


def github(monkeypatch: pytest.MonkeyPatch, url: str, where: Path, number: object = 7) -> None:
    event = where / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": number}}))
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": url,
        "GITHUB_REPOSITORY": "acme/flows",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)


def gitlab(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for name, value in {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": f"{url}/api/v4",
        "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "3",
        "GITSYNC_GITLAB_TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)


def plan_file(where: Path, text: str) -> str:
    (where / "plan.md").write_text(text)
    return str(where / "plan.md")


def test_github_first_push_creates_the_comment_and_the_next_updates_it(
    fake: tuple[FakeForge, str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    github(monkeypatch, url, clean_env)
    forge.add(GITHUB_THREAD, "LGTM")  # someone's review comment: never touched
    first = run_cli("ci", "comment", plan_file(clean_env, "## Plan\n+ create a\n"), "--key", "dev")
    assert first.exit_code == 0, first.output
    assert first.output.startswith("Created the plan comment on #7: http://x/c/")
    second = run_cli("ci", "comment", plan_file(clean_env, "## Plan\n~ update a\n"), "--key", "dev")
    assert second.exit_code == 0, second.output
    assert second.output.startswith("Updated the plan comment on #7: http://x/c/")

    thread = forge.comments[GITHUB_THREAD]
    assert [c["body"] for c in thread] == [
        "LGTM",
        "<!-- gitsync-plan:dev -->\n## Plan\n~ update a\n",
    ]
    writes = forge.writes()
    assert [(w.method, w.path) for w in writes] == [
        ("POST", GITHUB_THREAD),
        ("PATCH", f"/repos/acme/flows/issues/comments/{thread[1]['id']}"),
    ]
    assert all(w.headers["authorization"] == f"Bearer {TOKEN}" for w in writes)
    assert TOKEN not in first.output + second.output


def test_gitlab_creates_then_updates_the_same_note(
    fake: tuple[FakeForge, str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    gitlab(monkeypatch, url)
    monkeypatch.setenv("GITSYNC_TARGET", "prod")  # the default key
    for text in ("one\n", "two\n", "three\n"):
        result = run_cli("ci", "comment", plan_file(clean_env, text))
        assert result.exit_code == 0, result.output
    assert result.output.startswith("Updated the plan comment on !3: ")
    assert forge.comments[GITLAB_THREAD] == [
        {"id": 1001, "body": "<!-- gitsync-plan:prod -->\nthree\n"}
    ]
    assert [w.method for w in forge.writes()] == ["POST", "PUT", "PUT"]
    assert forge.writes()[1].path == f"{GITLAB_THREAD}/1001"
    assert forge.writes()[0].headers["private-token"] == TOKEN


def test_one_comment_per_key_found_past_the_first_page(
    fake: tuple[FakeForge, str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    github(monkeypatch, url, clean_env)
    for i in range(150):
        forge.add(GITHUB_THREAD, f"chatter {i} <!-- gitsync-plan:dev -->")  # not at the start
    ours = forge.add(GITHUB_THREAD, "<!-- gitsync-plan:dev -->\nold")
    assert run_cli("ci", "comment", plan_file(clean_env, "dev plan"), "--key", "dev").exit_code == 0
    assert (
        run_cli("ci", "comment", plan_file(clean_env, "prod plan"), "--key", "prod").exit_code == 0
    )
    bodies = {c["id"]: c["body"] for c in forge.comments[GITHUB_THREAD]}
    assert bodies[ours] == "<!-- gitsync-plan:dev -->\ndev plan"
    assert list(bodies.values())[-1] == "<!-- gitsync-plan:prod -->\nprod plan"
    assert len(bodies) == 152
    pages = [r for r in forge.requests if r.method == "GET"]
    assert len(pages) == 4  # two pages for each of the two runs


def test_a_marker_in_someone_elses_comment_gets_a_new_comment_not_a_failure(
    fake: tuple[FakeForge, str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    github(monkeypatch, url, clean_env)
    planted = forge.add(GITHUB_THREAD, "<!-- gitsync-plan:local -->\nall fine, merge it", True)
    result = run_cli("ci", "comment", plan_file(clean_env, "- delete everything\n"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Created")
    assert forge.comments[GITHUB_THREAD][0] == {
        "id": planted,
        "body": forge.comments[GITHUB_THREAD][0]["body"],
    }
    assert forge.comments[GITHUB_THREAD][1]["body"].endswith("- delete everything\n")


def test_a_plan_over_the_limit_is_cut_at_a_line_with_its_code_block_closed(
    fake: tuple[FakeForge, str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    github(monkeypatch, url, clean_env)
    lines = "".join(f"+ line {i:06d} of a long command\n" for i in range(3000))
    text = f"## Plan\n\n```diff\n{lines}```\n"
    assert len(text) > GITHUB_LIMIT
    result = run_cli("ci", "comment", plan_file(clean_env, text))
    assert result.exit_code == 0, result.output
    (posted,) = forge.comments[GITHUB_THREAD]
    body = posted["body"]
    assert len(body) <= GITHUB_LIMIT
    assert f"The plan was cut here: it has {len(text):,} characters" in body
    before_note = body.split("\n\n**The plan was cut here")[0]
    assert before_note.endswith("of a long command\n```\n")  # whole lines, fence closed
    assert sum(line.startswith("```") for line in body.splitlines()) % 2 == 0


def test_comment_body_cut_edges() -> None:
    assert comment_body("k", "short", 1000) == "<!-- gitsync-plan:k -->\nshort"
    cut = comment_body("k", "x" * 5000, 1000)  # one long line: nothing of it is kept
    assert len(cut) <= 1000 and "x" not in cut and "cut here" in cut
    fits = "a\n" * 100
    assert comment_body("k", fits, len(marker("k")) + 1 + len(fits)).endswith(fits)


@pytest.mark.parametrize(
    ("status", "content", "said"),
    [
        (401, b'{"message": "Bad credentials"}', "GitHub answered 401 to GET "),
        (404, b'{"message": "Not Found"}', "no such repository or pull request"),
        (500, b"<html>oops</html>", "GitHub answered 500 to GET "),
        (200, b"<html>a proxy's login page</html>", "with 200 but not JSON"),
        (200, b'{"not": "a list"}', "listed comments as something else than a list"),
        (403, b'{"message": "Resource not accessible by integration"}', "may not write comments"),
    ],
)
def test_api_errors_are_one_clear_line_and_exit_1(
    fake: tuple[FakeForge, str],
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    content: bytes,
    said: str,
) -> None:
    forge, url = fake
    github(monkeypatch, url, clean_env)
    forge.fault = (status, content.replace(b"Bad credentials", f"bad {TOKEN}".encode()))
    result = run_cli("ci", "comment", plan_file(clean_env, "plan"))
    assert result.exit_code == 1
    assert said in result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert TOKEN not in result.output
    assert forge.writes() == []


def test_a_failed_create_is_an_error_too(
    fake: tuple[FakeForge, str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = fake
    gitlab(monkeypatch, url)
    monkeypatch.setenv("GITSYNC_GITLAB_TOKEN", "wrong")
    result = run_cli("ci", "comment", plan_file(clean_env, "plan"))
    assert result.exit_code == 1
    assert "GitLab answered 401 to GET /projects/42/merge_requests/3/notes" in result.output
    assert "the token was refused" in result.output


def test_no_server_is_an_error_naming_where(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with refusing_port() as port:
        github(monkeypatch, f"http://127.0.0.1:{port}", clean_env)
        result = run_cli("ci", "comment", plan_file(clean_env, "plan"))
    assert result.exit_code == 1
    assert f"could not reach GitHub at http://127.0.0.1:{port}: ConnectError" in result.output


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"GITHUB_TOKEN": ""}, "GITHUB_TOKEN is not set (see docs/ci.md)"),
        ({"GITHUB_REPOSITORY": None}, "GITHUB_REPOSITORY is not set"),
        ({"GITHUB_ACTIONS": None}, "not in a GitHub Actions or GitLab CI job"),
        ({"GITSYNC_PR": "7; rm -rf /"}, "GITSYNC_PR: expected a pull or merge request number"),
        ({"GITSYNC_PR": "0"}, "expected a pull or merge request number, got '0'"),
    ],
)
def test_missing_or_odd_settings_are_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, str | None], said: str
) -> None:
    github(monkeypatch, "http://127.0.0.1:9", clean_env)
    for name, value in change.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    result = run_cli("ci", "comment", plan_file(clean_env, "plan"))
    assert result.exit_code == 1
    assert said in result.output


@pytest.mark.parametrize(
    ("event", "said"),
    [
        ('{"push": {}}', "not a pull_request event (run this on pull_request, or set GITSYNC_PR)"),
        ("not json", "the event file is not JSON"),
        ('{"pull_request": {"number": null}}', "pull_request.number: expected a pull or merge"),
    ],
)
def test_a_job_that_is_not_for_a_pull_request_says_so(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, event: str, said: str
) -> None:
    github(monkeypatch, "http://127.0.0.1:9", clean_env)
    (clean_env / "event.json").write_text(event)
    result = run_cli("ci", "comment", plan_file(clean_env, "plan"))
    assert result.exit_code == 1
    assert said in result.output


@pytest.mark.parametrize("key", ["a -->", "", "x\ny", "é"])
def test_a_key_that_could_break_the_marker_is_refused(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    github(monkeypatch, "http://127.0.0.1:9", clean_env)
    result = run_cli("ci", "comment", plan_file(clean_env, "plan"), "--key", key)
    assert result.exit_code == 1
    assert "use letters, digits and _ . : - only" in result.output


def test_the_plan_can_come_from_stdin(
    fake: tuple[FakeForge, str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from gitsync.cli import cli

    forge, url = fake
    github(monkeypatch, url, clean_env)
    result = CliRunner().invoke(cli, ["ci", "comment", "-"], input="piped plan\n")
    assert result.exit_code == 0, result.output
    assert forge.comments[GITHUB_THREAD][0]["body"].endswith("piped plan\n")


def test_a_plan_file_that_is_not_utf8_is_posted_with_replacement_characters(
    fake: tuple[FakeForge, str], clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forge, url = fake
    github(monkeypatch, url, clean_env)
    (clean_env / "plan.md").write_bytes(b"caf\xe9 \xff plan\n")
    result = run_cli("ci", "comment", str(clean_env / "plan.md"))
    assert result.exit_code == 0, result.output
    assert forge.comments[GITHUB_THREAD][0]["body"].endswith("caf\ufffd \ufffd plan\n")


def test_a_missing_plan_file_is_a_usage_error(clean_env: Path) -> None:
    result = run_cli("ci", "comment", "no-such-plan.md")
    assert result.exit_code == 1
    assert "'no-such-plan.md': No such file or directory" in result.output
