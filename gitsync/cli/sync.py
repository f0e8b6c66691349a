"""plan, apply, pull: the files against a target."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

import click

from gitsync import config, report
from gitsync.cli.app import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, cli, echo, mask_secrets
from gitsync.cli.files import copy_schemas
from gitsync.cli.options import (
    ProgressBar,
    duration,
    prune_options,
    quiet_option,
    render,
    runs_option,
    target_option,
)
from gitsync.errors import GitsyncError, PlanRefused

if TYPE_CHECKING:  # the network side is imported only when a command needs it
    from gitsync.applying import ApplyResult
    from gitsync.plan import Plan


@cli.command()
@target_option
@prune_options
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when there are changes, 0 when none, 1 on error.",
)
@runs_option
@quiet_option
def plan(
    target_name: str | None,
    prune: bool,
    allow_mass_delete: bool,
    output: str,
    detailed_exitcode: bool,
    on_active_runs: str,
    quiet: bool,
) -> int:
    """Show what apply would change on the target."""
    from gitsync import sync
    from gitsync.guards import OnActiveRuns

    settings = config.load()
    target = settings.target(target_name)
    checks = sync.Checks(settings.flows, OnActiveRuns(on_active_runs))
    bar = ProgressBar(quiet)
    files = sync.FilesBeingChecked(settings, target)
    with files, sync.connect(settings, target) as client:
        try:
            planned = sync.make_plan(client, target, files, prune, allow_mass_delete, bar, checks)
        except GitsyncError:  # its message may quote a secret's value: masked like the rest
            with contextlib.suppress(GitsyncError):
                mask_secrets(files.secrets())
            raise
        finally:
            bar.close()
        mask_secrets(files.secrets())
    echo(render(planned.plan, target.describe(), output))
    if detailed_exitcode and planned.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


@cli.command()
@target_option
@prune_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option(
    "--force-unlock",
    is_flag=True,
    help="Remove a lock left by an apply that was killed, then apply.",
)
@runs_option
@click.option(
    "--wait-timeout",
    type=duration,
    default="30m",
    show_default=True,
    help="With --on-active-runs wait or cancel: how long apply waits for runs to end.",
)
@quiet_option
def apply(
    target_name: str | None,
    prune: bool,
    allow_mass_delete: bool,
    auto_approve: bool,
    force_unlock: bool,
    on_active_runs: str,
    wait_timeout: float,
    quiet: bool,
) -> int:
    """Make the target match the files."""
    from gitsync import inspection, remote, sync
    from gitsync.guards import OnActiveRuns

    settings = config.load()
    target = settings.target(target_name)
    checks = sync.Checks(settings.flows, OnActiveRuns(on_active_runs))
    desired = sync.desired_files(settings, target)
    mask_secrets(desired.secrets)
    tree = desired.tree()
    if not auto_approve and not sys.stdin.isatty():
        raise PlanRefused(
            "no terminal to confirm on: run `gitsync plan` to review, then "
            "`gitsync apply --auto-approve`"
        )
    bar = ProgressBar(quiet)
    stopped: KeyboardInterrupt | None = None
    with (
        sync.connect(settings, target) as client,
        sync.locked(client, target, config.who(), force_unlock),
    ):
        planned = sync.make_plan(
            client, target, tree, prune, allow_mass_delete, bar, checks, desired.secrets
        )
        bar.close()
        echo(report.plan_text(planned.plan, target.describe()))
        if not planned.plan.has_changes:
            return EXIT_OK
        if not auto_approve and not click.confirm("\nApply these changes?", err=True):
            click.echo("Nothing was changed.", err=True)
            return EXIT_ERROR
        result = remote.ApplyResult()
        try:
            policy = inspection.RunPolicy(checks.on_active_runs, wait_timeout)
            runs = inspection.RunGuard(client, planned.state, policy)
            remote.apply(client, planned.plan, planned.state, bar, result, runs)
        except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP: the lock is released next
            stopped = e
    bar.close()
    echo("")
    echo(report.apply_text(result))
    if stopped is not None:
        _say_stopped(planned.plan, result)
        raise stopped
    return EXIT_ERROR if result.failed else EXIT_OK


def _say_stopped(plan: Plan, result: ApplyResult) -> None:
    sent = [c for c in plan.changes if c.kind.sent]
    left = len(sent) - len(result.outcomes)
    echo(
        f"Stopped before {left} of {len(sent)} changes were done (a change "
        "in flight may have landed); the lock was released. Run apply again to finish.",
        err=True,
    )


@cli.command()
@target_option
@click.option("--force", is_flag=True, help="Overwrite local files that differ.")
@quiet_option
def pull(target_name: str | None, force: bool, quiet: bool) -> int:
    """Write the target's owned workflows as files."""
    from gitsync import pull as puller
    from gitsync import remote, sync

    settings = config.load()
    target = settings.target(target_name)
    secrets = sync.secrets_of_files(settings, target)
    mask_secrets(secrets)
    bar = ProgressBar(quiet)
    with sync.connect(settings, target) as client:
        state = remote.read_state(client, target.root, bar)
    bar.close()
    substitution = settings.substitution(target)
    state, foreign = target.naming().to_files(state)
    if state.flows:  # the files' header points at the local schema, as init's do
        copy_schemas(settings.base, ("workflow.schema.json",))
    result = puller.pull(state, settings.flows, settings.base, force, substitution, secrets)
    for path in result.written:
        echo(f"wrote     {path}")
    for path in result.refused:
        echo(f"differs   {path} (kept; --force overwrites it)")
    for where, why in result.skipped:
        echo(f"skipped   {where}: {why}")
    for where, why in foreign:  # another target's, in a shared root: not an error
        echo(f"left      {where}: {why}")
    skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
    echo(
        f"Pulled {len(result.written)} written, {len(result.unchanged)} unchanged, "
        f"{len(result.refused)} kept{skipped} from {target.describe()}."
    )
    return EXIT_ERROR if result.refused or result.skipped else EXIT_OK
