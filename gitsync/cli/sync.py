"""plan, apply, pull: the files against a target."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
from click.core import ParameterSource

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
from gitsync.cli.saved import apply_saved, file_prints, finish, save, send
from gitsync.errors import GitsyncError, PlanRefused
from gitsync.saved_plan import Options

PLAN_FILE = click.Path(dir_okay=False, path_type=Path)


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
@click.option(
    "--out",
    type=PLAN_FILE,
    metavar="FILE",
    help="Also save the plan to FILE, for `gitsync apply FILE` to apply exactly it.",
)
@quiet_option
def plan(
    target_name: str | None,
    prune: bool,
    allow_mass_delete: bool,
    output: str,
    detailed_exitcode: bool,
    on_active_runs: str,
    out: Path | None,
    quiet: bool,
) -> int:
    """Show what apply would change on the target."""
    from gitsync import sync
    from gitsync.guards import OnActiveRuns

    settings = config.load()
    target = settings.target(target_name)
    prints = file_prints(settings, out) if out is not None else {}  # before they are read
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
    if out is not None:
        options = Options(prune, allow_mass_delete, on_active_runs)
        save(out, target, options, prints, planned, files.secrets())
    if detailed_exitcode and planned.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


@cli.command()
@click.argument("plan_file", metavar="[FILE]", required=False, type=PLAN_FILE)
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
    plan_file: Path | None,
    target_name: str | None,
    prune: bool,
    allow_mass_delete: bool,
    auto_approve: bool,
    force_unlock: bool,
    on_active_runs: str,
    wait_timeout: float,
    quiet: bool,
) -> int:
    """Make the target match the files, or apply the plan saved in FILE.

    FILE is written by `gitsync plan --out FILE`. Apply then makes exactly that plan, with
    its options, and does not ask: the plan was reviewed when it was saved. It refuses (exit
    1, nothing sent) when the files, the target's workflows or gitsync changed since.
    """
    from gitsync import sync
    from gitsync.guards import OnActiveRuns

    if plan_file is not None:
        _no_plan_options(click.get_current_context(), plan_file)
        return apply_saved(plan_file, target_name, force_unlock, wait_timeout, quiet)
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
        result, stopped = send(client, planned, checks, wait_timeout, bar)
    bar.close()
    return finish(planned.plan, result, stopped)


def _no_plan_options(ctx: click.Context, plan_file: Path) -> None:
    """A saved plan brings its own options: the command line must not seem to change them."""
    for name in ("prune", "allow_mass_delete", "on_active_runs"):
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            option = "--" + name.replace("_", "-")
            raise click.UsageError(
                f"{option} cannot be given with a saved plan: {plan_file} applies with the "
                "options it was planned with"
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
