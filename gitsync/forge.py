"""The plan as one pull-request comment on GitHub or GitLab, created once and then updated in
place, so a pull request shows the current plan instead of a trail of old ones.

The comment is found again by a hidden first line, ``<!-- gitsync-plan:<key> -->`` (one
comment per key: per target). GitHub: issue comments (list, POST, PATCH); GitLab: merge
request notes (list, POST, PUT). The token is sent as a header and never put in a message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from gitsync.errors import ConfigError, GitsyncError

GITHUB_LIMIT = 65_000  # GitHub refuses a comment body over 65,536 characters
GITLAB_LIMIT = 1_000_000  # GitLab's note limit
PAGE = 100
MAX_PAGES = 100  # 10,000 comments: a bound on the search, not a real pull request
KEY = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


@dataclass(frozen=True)
class Forge:
    """Where the comment goes: a GitHub pull request or a GitLab merge request."""

    kind: str  # "github" or "gitlab"
    api_url: str
    project: str  # GitHub owner/name; GitLab project id or path
    number: int  # pull request number, or merge request iid (0: not a pull request's job)
    token: str = field(repr=False)
    commit: str = ""  # the commit the job runs for

    @property
    def name(self) -> str:
        return "GitHub" if self.kind == "github" else "GitLab"

    @property
    def limit(self) -> int:
        return GITHUB_LIMIT if self.kind == "github" else GITLAB_LIMIT

    def comments_path(self) -> str:
        if self.kind == "github":
            return f"/repos/{self.project}/issues/{self.number}/comments"
        return f"/projects/{quote(self.project, safe='')}/merge_requests/{self.number}/notes"

    def comment_path(self, comment_id: int) -> str:
        if self.kind == "github":
            return f"/repos/{self.project}/issues/comments/{comment_id}"
        return f"{self.comments_path()}/{comment_id}"

    def headers(self) -> dict[str, str]:
        if self.kind == "github":
            return {
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            }
        return {"PRIVATE-TOKEN": self.token}


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    comment_id: int
    url: str


def marker(key: str) -> str:
    if not KEY.fullmatch(key):
        raise ConfigError(f"comment key '{key}': use letters, digits and _ . : - only")
    return f"<!-- gitsync-plan:{key} -->"


def comment_body(key: str, text: str, limit: int) -> str:
    """The marker line, then ``text``, cut at a line (and its code block closed) to fit."""
    head = marker(key) + "\n"
    room = limit - len(head)
    if len(text) <= room:
        return head + text
    note = (
        f"\n\n**The plan was cut here: it has {len(text):,} characters, more than a comment "
        "holds. The whole plan is plan.md in the plan job's artifacts.**\n"
    )
    kept = text[: max(0, room - len(note) - 4)]
    kept = kept[: kept.rfind("\n") + 1] if "\n" in kept else ""
    fences = sum(1 for line in kept.splitlines() if line.lstrip().startswith("```"))
    return head + kept + ("```\n" if fences % 2 else "") + note


def forge_from_env(env: Mapping[str, str], kind: str = "auto", request: bool = True) -> Forge:
    """The repository (and with ``request``, the pull request) this CI job runs for, from the
    variables GitHub or GitLab set."""
    if kind == "auto":
        kind = "github" if env.get("GITHUB_ACTIONS") else "gitlab" if env.get("GITLAB_CI") else ""
    if kind == "github":
        return Forge(
            "github",
            env.get("GITHUB_API_URL") or "https://api.github.com",
            _needed(env, "GITHUB_REPOSITORY"),
            _github_number(env) if request else 0,
            _token(env, "GITHUB_TOKEN"),
            "" if request else _needed(env, "GITHUB_SHA"),
        )
    if kind == "gitlab":
        iid = _needed(env, "CI_MERGE_REQUEST_IID") if request else "0"
        return Forge(
            "gitlab",
            _needed(env, "CI_API_V4_URL"),
            _needed(env, "CI_PROJECT_ID"),
            _number(iid, "CI_MERGE_REQUEST_IID") if request else 0,
            _token(env, "GITSYNC_GITLAB_TOKEN"),
            "" if request else _needed(env, "CI_COMMIT_SHA"),
        )
    raise ConfigError("not in a GitHub Actions or GitLab CI job: say which with --forge")


def _needed(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set (see docs/ci.md)")
    return value


def _token(env: Mapping[str, str], name: str) -> str:
    """The token, if it can be sent as a header: printable ASCII only (never shown)."""
    value = _needed(env, name)
    if not all(" " <= c <= "~" or c == "\t" for c in value):
        raise ConfigError(
            f"{name} is not a valid HTTP header value (it holds a line break, a control or a "
            "non-ASCII character): check how the secret was set"
        )
    return value


def _number(text: str, where: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{where}: expected a pull or merge request number, got '{text[:40]}'")
    return int(text)


def _github_number(env: Mapping[str, str]) -> int:
    """GITSYNC_PR, else the pull request of the event that started the job."""
    if env.get("GITSYNC_PR"):
        return _number(env["GITSYNC_PR"], "GITSYNC_PR")
    path = _needed(env, "GITHUB_EVENT_PATH")
    try:
        with open(path, encoding="utf-8") as event_file:
            event = json.load(event_file)
    except OSError as e:
        raise ConfigError(f"{path}: the event file cannot be read: {e.strerror or e}") from None
    except ValueError:
        raise ConfigError(f"{path}: the event file is not JSON") from None
    try:
        number = event["pull_request"]["number"]
    except (KeyError, TypeError):
        raise ConfigError(
            f"{path}: not a pull_request event (run this on pull_request, or set GITSYNC_PR)"
        ) from None
    return _number(str(number), "the event's pull_request.number")


def post_comment(
    forge: Forge, key: str, text: str, transport: httpx.BaseTransport | None = None
) -> Posted:
    """Update the comment that carries ``key``'s marker, or create it when there is none."""
    body = comment_body(key, text, forge.limit)
    with Session(forge, transport) as api:
        found = _find(api, forge, marker(key))
        if found is not None:
            answer = api.send("PATCH" if forge.kind == "github" else "PUT", found, body)
            if answer is not None:
                return Posted("updated", found, _url_of(answer))
        answer = api.send("POST", None, body) or {}
        return Posted("created", _id_of(answer), _url_of(answer))


def _find(api: Session, forge: Forge, mark: str) -> int | None:
    """The newest comment whose body starts with ``mark``."""
    found = None
    for page in range(1, MAX_PAGES + 1):
        items = api.list(page)
        for item in items:
            if isinstance(item, dict) and str(item.get("body") or "").startswith(mark):
                found = _id_of(item)
        if len(items) < PAGE:
            break
    return found


def _id_of(item: Mapping[str, Any]) -> int:
    value = item.get("id")
    if not isinstance(value, int) or isinstance(value, bool):
        raise GitsyncError("the comment API answered without a comment id")
    return value


def _url_of(item: Mapping[str, Any]) -> str:
    url = item.get("html_url") or item.get("web_url") or ""
    return url if isinstance(url, str) else ""


class Session:
    """Requests to one forge's API, each failure turned into one clear GitsyncError."""

    def __init__(self, forge: Forge, transport: httpx.BaseTransport | None) -> None:
        self.forge = forge
        self.http = httpx.Client(
            base_url=forge.api_url.rstrip("/"),
            headers=forge.headers(),
            transport=transport,
            timeout=30,
        )

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params)

    def download(self, path: str, **params: Any) -> bytes:
        """A file's bytes, following a redirect (httpx drops the token for another host)."""
        return self._call("GET", path, raw=True, params=params, follow_redirects=True)  # type: ignore[no-any-return]

    def list(self, page: int) -> list[Any]:
        params = {"per_page": PAGE, "page": page}
        answer = self._call("GET", self.forge.comments_path(), params=params)
        if not isinstance(answer, list):
            raise GitsyncError(f"{self.forge.name} listed comments as something else than a list")
        return answer

    def send(self, method: str, comment_id: int | None, body: str) -> dict[str, Any] | None:
        """POST a new comment, or PATCH/PUT one; None when an update is refused with 403 (a
        comment someone else wrote that carries the marker: a new one is created instead)."""
        forge = self.forge
        path = forge.comments_path() if comment_id is None else forge.comment_path(comment_id)
        answer = self._call(method, path, json={"body": body}, refused_ok=comment_id is not None)
        if answer is None:
            return None
        if not isinstance(answer, dict):
            raise GitsyncError(f"{forge.name} answered {method} {path} with something else")
        return answer

    def _call(
        self, method: str, path: str, refused_ok: bool = False, raw: bool = False, **kwargs: Any
    ) -> Any:
        forge = self.forge
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise GitsyncError(
                f"could not reach {forge.name} at {forge.api_url}: {type(e).__name__}"
            ) from None
        if response.status_code == 403 and refused_ok:
            return None
        if response.status_code >= 400:
            raise GitsyncError(_failure(forge, method, path, response))
        if raw:
            return response.content
        try:
            return response.json()
        except ValueError:
            raise GitsyncError(
                f"{forge.name} answered {method} {path} with {response.status_code} but not JSON"
            ) from None


HINTS = {
    401: "the token was refused: is it set, and still valid?",
    403: "the token may not write comments (GitHub: permissions pull-requests: write; "
    "GitLab: a token with the api scope)",
    404: "no such repository or pull request, or the token cannot see it",
}


def _failure(forge: Forge, method: str, path: str, response: httpx.Response) -> str:
    """One line: what was asked, the status, the service's own message, what to check."""
    said = ""
    try:
        data = response.json()
        said = str(data.get("message", "")) if isinstance(data, dict) else ""
    except ValueError:
        pass
    said = " ".join(said.replace(forge.token, "***").split())[:200]
    hint = HINTS.get(response.status_code, "")
    parts = [f"{forge.name} answered {response.status_code} to {method} {path}", said, hint]
    return "; ".join(p for p in parts if p)
