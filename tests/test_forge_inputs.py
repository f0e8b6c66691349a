"""Odd CI settings for `gitsync ci`: a token that cannot be a header, a missing event file,
a commit that would change the API path."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gitsync.errors import GitsyncError
from gitsync.forge import Forge
from gitsync.forge_plans import fetch_plan
from tests import test_ci_comment
from tests.conftest import run_cli
from tests.test_ci_comment import github, plan_file

clean_env = test_ci_comment.clean_env  # the same fixture


@pytest.mark.parametrize("token", ["tökén-CANARY", "line-CANARY\nnext", "esc\x1bCANARY"])
@pytest.mark.parametrize("variable", ["GITHUB_TOKEN", "GITSYNC_GITLAB_TOKEN"])
def test_a_token_that_is_no_header_value_is_one_line_never_shown(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, token: str, variable: str
) -> None:
    if variable == "GITHUB_TOKEN":
        github(monkeypatch, "http://127.0.0.1:9", clean_env)
    else:
        test_ci_comment.gitlab(monkeypatch, "http://127.0.0.1:9")
    monkeypatch.setenv(variable, token)
    result = run_cli("ci", "comment", plan_file(clean_env, "plan"))
    assert result.exit_code == 1
    assert result.output == (
        f"error: {variable} is not a valid HTTP header value (it holds a line break, a "
        "control or a non-ASCII character): check how the secret was set\n"
    )
    assert "CANARY" not in result.output


def test_a_missing_event_file_says_so(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    github(monkeypatch, "http://127.0.0.1:9", clean_env)
    monkeypatch.setenv("GITHUB_EVENT_PATH", "/nonexist")
    result = run_cli("ci", "comment", plan_file(clean_env, "plan"))
    assert result.exit_code == 1
    assert result.output == (
        "error: /nonexist: the event file cannot be read: No such file or directory\n"
    )


@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_the_commit_is_url_encoded_in_api_paths(kind: str) -> None:
    asked: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.raw_path)
        return httpx.Response(200, json=[])

    forge = Forge(kind, "http://forge.test", "acme/flows", 0, "t", "../../x?y=1#z")
    with pytest.raises(GitsyncError):
        fetch_plan(forge, "prod", httpx.MockTransport(answer))
    assert asked and b"..%2F..%2Fx%3Fy%3D1%23z" in asked[0], asked
