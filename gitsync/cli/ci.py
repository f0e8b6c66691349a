"""gitsync ci: the steps of the CI templates (ci/) that are not plain plan or apply."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import click

from gitsync import config
from gitsync.cli.app import EXIT_OK, cli, echo


@cli.group()
def ci() -> None:
    """Steps for CI jobs (the templates in ci/; docs/ci.md)."""


def key_and_forge(command: Any) -> Any:
    """--key and --forge, the same for each step, so a comment and a plan match up."""
    command = click.option(
        "--forge",
        type=click.Choice(["auto", "github", "gitlab"]),
        default="auto",
        show_default=True,
        help="Where the job runs; auto: from GITHUB_ACTIONS / GITLAB_CI.",
    )(command)
    return click.option(
        "--key",
        metavar="KEY",
        help="One plan comment and artifact per key [default: $GITSYNC_TARGET, else 'local'].",
    )(command)


@ci.command()
@click.argument("plan_file", type=click.File("r", encoding="utf-8", errors="replace"))
@key_and_forge
def comment(plan_file: TextIO, key: str | None, forge: str) -> int:
    """Post PLAN_FILE (a Markdown plan; - for stdin) as the pull request's plan comment.

    The first run creates the comment; later runs update that same comment in place.
    """
    from gitsync import forge as forges

    env = config.load().env
    where = forges.forge_from_env(env, forge)
    posted = forges.post_comment(where, _key(key, env), plan_file.read())
    number = f"#{where.number}" if where.kind == "github" else f"!{where.number}"
    link = posted.url or f"comment {posted.comment_id}"
    echo(f"{posted.action.capitalize()} the plan comment on {number}: {link}")
    return EXIT_OK


@ci.command("fetch-plan")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@key_and_forge
def fetch_plan(plan_file: Path, key: str | None, forge: str) -> int:
    """Save to PLAN_FILE the plan reviewed on the pull request this commit merged.

    For the job on the main branch: `gitsync apply PLAN_FILE` then applies exactly it.
    """
    from gitsync import forge as forges
    from gitsync import forge_plans

    env = config.load().env
    where = forges.forge_from_env(env, forge, request=False)
    name = _key(key, env)
    forges.marker(name)  # the same rule for the key as the comment's
    plan_file.write_bytes(forge_plans.fetch_plan(where, name))
    echo(f"Saved the plan reviewed for {where.commit[:12]} to {plan_file}")
    return EXIT_OK


def _key(key: str | None, env: Mapping[str, str]) -> str:
    return key if key is not None else env.get("GITSYNC_TARGET") or config.DEFAULT_TARGET
