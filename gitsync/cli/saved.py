"""Saved plans on the command line: ``plan --out FILE`` and ``apply FILE`` (saved_plan.py),
and the sending step both kinds of apply share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from gitsync import __version__, config, report, saved_plan
from gitsync import saved_plan_checks as checking
from gitsync.cli.app import EXIT_ERROR, EXIT_OK, echo, mask_secrets
from gitsync.cli.options import ProgressBar

if TYPE_CHECKING:  # the network side is imported only when a command needs it
    from gitsync.applying import ApplyResult
    from gitsync.client import Client
    from gitsync.config import Settings, Target
    from gitsync.plan import Plan
    from gitsync.substitution import Secrets
    from gitsync.sync import Checks, Planned


def file_prints(settings: Settings, out: Path | None = None) -> dict[str, str]:
    """The files' fingerprints; with ``out``, first PlanRefused if a plan cannot go there."""
    config_file = settings.base / config.CONFIG_FILE
    if out is not None:
        saved_plan.check_out(out, settings.flows, config_file)
    return saved_plan.file_prints(settings.base, settings.flows, config_file)


def save(
    path: Path,
    target: Target,
    options: saved_plan.Options,
    files: dict[str, str],
    planned: Planned,
    secrets: Secrets,
) -> None:
    """Write the saved plan of ``planned`` (``files``: the fingerprints taken before it)."""
    readable = json.loads(report.plan_json(planned.plan, target.describe()))
    saved = saved_plan.made(
        __version__,
        (target.name, target.describe()),
        options,
        files,
        planned.plan,
        planned.state,
        saved_plan.hider(secrets),
        readable,
    )
    saved_plan.write(saved, path, secrets)
    # on stderr: stdout holds the plan alone (``-o json`` stays one JSON document)
    echo(f"Saved the plan to {path}; `gitsync apply {path}` applies exactly it.", err=True)


def apply_saved(
    path: Path, target_name: str | None, force_unlock: bool, wait_timeout: float, quiet: bool
) -> int:
    """Apply the saved plan at ``path``, or refuse before any write (saved_plan.py)."""
    from gitsync import sync
    from gitsync.guards import OnActiveRuns

    saved = saved_plan.read(path)
    settings = config.load()
    target = settings.target(target_name)
    checking.check_made_for(saved, path, target.name, __version__)
    checking.check_files(saved, path, file_prints(settings))  # before the lock: no write
    desired = sync.desired_files(settings, target)
    mask_secrets(desired.secrets)
    if not saved.has_changes:
        checking.check_unedited_empty(saved, path)
        echo(f"The plan saved in {path} has no changes: nothing to apply.")
        return EXIT_OK
    hide = saved_plan.hider(desired.secrets)
    holders = {target.naming().remote(name) for name in desired.secrets.labels}
    options = saved.options
    checks = sync.Checks(settings.flows, OnActiveRuns(options.on_active_runs))
    tree = desired.tree()
    bar = ProgressBar(quiet)

    def plan_again(client: Client) -> Planned | None:
        """The plan made now, checked against the saved one; None when it has no changes
        (the files are as saved: the saved plan was applied already)."""
        planned = sync.make_plan(
            client,
            target,
            tree,
            options.prune,
            options.allow_mass_delete,
            bar,
            checks,
            desired.secrets,
        )
        bar.close()
        if not planned.plan.has_changes:
            return None
        checking.check_remote(saved, path, planned.state, hide, holders)
        checking.check_plan(saved, path, planned.plan, planned.state.root, hide)
        return planned

    with sync.connect(settings, target) as client:
        # before the lock: a target changed since refuses with no write
        if plan_again(client) is None:
            return _applied_already(path)
        with sync.locked(client, target, config.who(), force_unlock):
            planned = plan_again(client)  # under the lock, nothing else changes it any more
            if planned is None:
                return _applied_already(path)
            echo(report.plan_text(planned.plan, target.describe()))
            result, stopped = send(client, planned, checks, wait_timeout, bar)
    return finish(planned.plan, result, stopped, path)


def _applied_already(path: Path) -> int:
    echo(
        f"The target already matches the files: the plan saved in {path} seems applied "
        "already. Nothing to apply."
    )
    return EXIT_OK


def send(
    client: Client, planned: Planned, checks: Checks, wait_timeout: float, bar: ProgressBar
) -> tuple[ApplyResult, KeyboardInterrupt | None]:
    """Apply ``planned``; a Ctrl-C, SIGTERM or SIGHUP is returned, for after the unlock."""
    from gitsync import inspection, remote

    result = remote.ApplyResult()
    try:
        policy = inspection.RunPolicy(checks.on_active_runs, wait_timeout)
        runs = inspection.RunGuard(client, planned.state, policy)
        remote.apply(client, planned.plan, planned.state, bar, result, runs)
    except KeyboardInterrupt as e:  # the lock is released next
        return result, e
    return result, None


def finish(
    plan: Plan, result: ApplyResult, stopped: KeyboardInterrupt | None, saved: Path | None = None
) -> int:
    """Say what was done (and, when stopped, what was not, counted against all the plan's
    changes); the exit code. ``saved``: the saved plan applied, which cannot be applied again
    once the target changed: a new one is needed."""
    echo("")
    sent = [c for c in plan.changes if c.kind.sent]
    echo(report.apply_text(result, len(sent) if stopped is not None else None))
    if stopped is not None:
        left = len(sent) - len(result.outcomes)
        again = (
            f"Make a new plan (`gitsync plan --out {saved}`), review it and apply it to finish."
            if saved is not None
            else "Run apply again to finish."
        )
        echo(
            f"Stopped before {left} of {len(sent)} changes were done (a change "
            f"in flight may have landed); the lock was released. {again}",
            err=True,
        )
        raise stopped
    return EXIT_ERROR if result.failed else EXIT_OK
