"""Find the plan that was saved and reviewed on the pull request a commit merged, so the job
on the main branch applies exactly it (``gitsync apply FILE`` then checks it still holds).

GitHub: the merged pull request of the commit, its head commit's successful pull_request runs,
their artifact ``gitsync-plan-<key>`` (a zip holding plan.json). GitLab: the merged merge
request of the commit, and plan.json of the job ``gitsync-plan`` in its latest successful
pipeline. No merged pull request, or no saved plan, is an error: nothing reviewed, nothing to
apply.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any
from urllib.parse import quote

import httpx

from gitsync.errors import GitsyncError
from gitsync.forge import Forge, Session

PLAN_NAME = "plan.json"
GITLAB_JOB = "gitsync-plan"
MAX_PLAN = 200 * 1024 * 1024  # bytes: a bound on what is unpacked, far above any real plan


def artifact_name(key: str) -> str:
    return f"gitsync-plan-{key}"


def fetch_plan(forge: Forge, key: str, transport: httpx.BaseTransport | None = None) -> bytes:
    """The saved plan (plan.json's bytes) reviewed on the request that merged forge.commit."""
    github = forge.kind == "github"
    with Session(forge, transport) as api:
        data = _github_plan(api, forge, key) if github else _gitlab_plan(api, forge)
    try:
        if not isinstance(json.loads(data), dict):
            raise ValueError
    except ValueError:
        raise GitsyncError(f"the saved plan found for {forge.commit[:12]} is not JSON") from None
    return data


def _github_plan(api: Session, forge: Forge, key: str) -> bytes:
    repo = f"/repos/{forge.project}"
    pulls = _listed(api.get(f"{repo}/commits/{quote(forge.commit, safe='')}/pulls"), forge)
    merged = [p for p in pulls if p.get("merged_at") and p.get("merge_commit_sha") == forge.commit]
    if not merged:
        raise GitsyncError(_unmerged(forge))
    pull = merged[0]
    head = str((pull.get("head") or {}).get("sha") or "")
    found = api.get(f"{repo}/actions/runs", head_sha=head, event="pull_request", status="success")
    runs = found.get("workflow_runs") if isinstance(found, dict) else None
    for run in runs if isinstance(runs, list) else []:
        listed = api.get(f"{repo}/actions/runs/{run.get('id')}/artifacts", name=artifact_name(key))
        artifacts = listed.get("artifacts") if isinstance(listed, dict) else None
        for artifact in artifacts if isinstance(artifacts, list) else []:
            if artifact.get("name") == artifact_name(key) and not artifact.get("expired"):
                return _unzipped(api.download(str(artifact.get("archive_download_url"))))
    raise GitsyncError(
        f"pull request #{pull.get('number')} has no saved plan {artifact_name(key)} from a "
        f"successful run of its last commit {head[:12]}: nothing reviewed, nothing applied"
    )


def _gitlab_plan(api: Session, forge: Forge) -> bytes:
    project = f"/projects/{quote(forge.project, safe='')}"
    requests = _listed(
        api.get(f"{project}/repository/commits/{quote(forge.commit, safe='')}/merge_requests"),
        forge,
    )
    merged = [
        r
        for r in requests
        if r.get("state") == "merged"
        and forge.commit in (r.get("merge_commit_sha"), r.get("squash_commit_sha"), r.get("sha"))
    ]
    if not merged:
        raise GitsyncError(_unmerged(forge))
    iid = merged[0].get("iid")
    failure: GitsyncError | None = None
    for ref in (f"refs/merge-requests/{iid}/head", f"refs/merge-requests/{iid}/merge"):
        path = f"{project}/jobs/artifacts/{quote(ref, safe='')}/raw/{PLAN_NAME}"
        try:
            return api.download(path, job=GITLAB_JOB)
        except GitsyncError as e:  # no successful pipeline of that kind: try the other
            failure = e
    raise GitsyncError(
        f"merge request !{iid} has no saved plan from a successful {GITLAB_JOB} job: nothing "
        f"reviewed, nothing applied ({failure})"
    )


def _listed(answer: Any, forge: Forge) -> list[dict[str, Any]]:
    if not isinstance(answer, list):
        raise GitsyncError(f"{forge.name} listed the commit's requests as something else")
    return [item for item in answer if isinstance(item, dict)]


def _unmerged(forge: Forge) -> str:
    return (
        f"commit {forge.commit[:12]} was not merged from a pull or merge request: there is no "
        "reviewed plan to apply (nothing applied)"
    )


def _unzipped(data: bytes) -> bytes:
    """plan.json out of an artifact's zip, refusing what is not one or is far too large."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo(PLAN_NAME)
            if info.file_size > MAX_PLAN:
                raise GitsyncError(f"the plan artifact's {PLAN_NAME} is over {MAX_PLAN} bytes")
            return archive.read(info)
    except (zipfile.BadZipFile, KeyError):
        raise GitsyncError(f"the plan artifact is not a zip holding {PLAN_NAME}") from None
