"""gitsync ci: the steps of the CI templates (ci/) that are not plain plan or apply."""

from __future__ import annotations

from typing import TextIO

import click

from gitsync import config
from gitsync.cli.app import EXIT_OK, cli, echo


@cli.group()
def ci() -> None:
    """Steps for CI jobs (the templates in ci/; docs/ci.md)."""


@ci.command()
@click.argument("plan_file", type=click.File("r", encoding="utf-8"))
@click.option(
    "--key",
    metavar="KEY",
    help="One comment per key [default: $GITSYNC_TARGET, else 'local'].",
)
@click.option(
    "--forge",
    type=click.Choice(["auto", "github", "gitlab"]),
    default="auto",
    show_default=True,
    help="Where the job runs; auto: from GITHUB_ACTIONS / GITLAB_CI.",
)
def comment(plan_file: TextIO, key: str | None, forge: str) -> int:
    """Post PLAN_FILE (a Markdown plan; - for stdin) as the pull request's plan comment.

    The first run creates the comment; later runs update that same comment in place.
    """
    from gitsync import forge as forges

    env = config.load().env
    where = forges.forge_from_env(env, forge)
    name = key if key is not None else env.get("GITSYNC_TARGET") or config.DEFAULT_TARGET
    posted = forges.post_comment(where, name, plan_file.read())
    number = f"#{where.number}" if where.kind == "github" else f"!{where.number}"
    link = posted.url or f"comment {posted.comment_id}"
    echo(f"{posted.action.capitalize()} the plan comment on {number}: {link}")
    return EXIT_OK
