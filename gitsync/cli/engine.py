"""The engine and runs: serve, run, instances, logs, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitsync import config, report
from gitsync.cli.app import EXIT_ERROR, EXIT_OK, cli, echo, mask_secrets
from gitsync.cli.options import target_option
from gitsync.errors import GitsyncError, InvalidFilesError
from gitsync.validate import validate_paths

if TYPE_CHECKING:  # the commands import what they use: `gitsync validate` starts faster
    from gitsync.client import Client
    from gitsync.model import Workflow
    from gitsync.running import Instance


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0: any free).")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the engine keeps its store [default: .gitsync/engine].",
)
@click.option("--org-id", help="Add --user-id to this organization.")
@click.option("--user-id", help="A user to add to --org-id.")
@click.option("--app-key", help="Require EnOS gateway authentication with this access key.")
@click.option("--app-secret", help="The secret key that goes with --app-key.")
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    default=None,
    help="Tasks run at once [default: the CPU count].",
)
@click.option(
    "--extensions",
    is_flag=True,
    help="Answer more than SPEC documents (Export's active and rights); default: strict.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    org_id: str | None,
    user_id: str | None,
    app_key: str | None,
    app_secret: str | None,
    parallelism: int | None,
    extensions: bool,
) -> None:
    """Run the bundled reference engine in the foreground until Ctrl-C."""
    from gitsync.engine.server import EngineOptions, User, serve_forever

    if bool(org_id) != bool(user_id):
        raise click.UsageError("--org-id and --user-id go together")
    if bool(app_key) != bool(app_secret):
        raise click.UsageError("--app-key and --app-secret go together")
    settings = config.load()
    options = EngineOptions(
        schedule=True,
        parallelism=parallelism,
        data_dir=data_dir or settings.engine_dir,
        app_key=app_key,
        app_secret=app_secret,
        users=[User(user_id, org_id)] if user_id and org_id else [],
        extensions=extensions or settings.engine_extensions,
    )

    def ready(url: str) -> None:
        auth = " (gateway authentication on)" if app_key else ""
        click.echo(
            f"gitsync engine serving {url}{auth}; data in {options.data_dir}; Ctrl-C to stop",
            err=True,
        )
        click.echo(url)

    serve_forever(options, host, port, ready)


# -- plan / apply / pull -----------------------------------------------------------


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        out[key] = value
    return out


@cli.command()
@click.argument("workflow")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a parameter for this run (repeatable).",
)
@click.option("--from-task", metavar="NAME", help="Run only this task and what is downstream.")
@target_option
@click.option("--force-unlock", is_flag=True, help="Remove a stale apply lock first.")
@click.option(
    "--cancel-on-interrupt",
    is_flag=True,
    help="Cancel the run on Ctrl-C or SIGTERM [default: a served engine's run goes on].",
)
def run(
    workflow: str,
    params: tuple[str, ...],
    from_task: str | None,
    target_name: str | None,
    force_unlock: bool,
    cancel_on_interrupt: bool,
) -> int:
    """Apply one workflow file (its path or its name), run it, and follow it to the end.

    A workflow that is on the target but has no file here is run as it is there."""
    from gitsync import sync, which
    from gitsync.cli.following import Run, apply_waiting

    overrides = _params(params)
    settings = config.load()
    target = settings.target(target_name)
    path = which.workflow_file(workflow, settings.flows)
    path = path or which.files_by_name(settings.flows).get(workflow)
    checked = _checked(path, settings, target) if path is not None else None
    with sync.connect_engine(settings, target) as (client, engine):
        if checked is None:
            name = which.workflow_name(workflow, settings.flows, target.naming(), client)
            echo(f"{name}: no workflow file here; running it as it is on the target")
        else:
            name = checked.name
            applied = apply_waiting(client, target, checked, force_unlock)
            if applied.failed:
                echo(report.apply_text(applied))
                return EXIT_ERROR
        run = Run(client, name, target, target_name, engine)
        run.trigger(overrides, from_task)
        try:
            end = run.follow()
        except KeyboardInterrupt:
            run.interrupted(cancel_on_interrupt)
            raise
    for task, log in end.logs:
        echo(f"\n---- log of failed task {task} ----\n{log.rstrip()}")
    echo(f"\n{name}: {end.status} ({end.instance_id})")
    return EXIT_OK if end.status == "SUCCESS" else EXIT_ERROR


def _checked(path: Path, settings: config.Settings, target: config.Target) -> Workflow:
    result = validate_paths([path], settings.flows, None, settings.substitution(target))
    mask_secrets(result.secrets)
    if not result.ok:
        raise InvalidFilesError(f"{path} is not valid; nothing was sent", result.problems)
    return result.workflows[0]


@cli.command()
@click.argument("flow", metavar="WORKFLOW")
@target_option
def instances(flow: str, target_name: str | None) -> int:
    """List the runs of a workflow (its name or file) and of its retired versions, newest
    first."""
    from gitsync import running, sync

    settings = config.load()
    target = settings.target(target_name)
    with sync.connect(settings, target) as client:
        name = _workflow(flow, settings, target, client)
        remote = target.naming().remote(name)
        rows = running.instances_of(client, remote, client.get_current_time())
    if not rows:
        echo(f"no instances of {name}")
        return EXIT_OK
    echo(
        f"{'INSTANCE':<28} {'STATUS':<15} {'TRIGGER':<20} {'DURATION':<9} {'START':<20} "
        f"{'END':<20} VERSION"
    )
    for row in rows:
        echo(
            f"{row.instance_id:<28} {row.status:<15} {row.trigger_time or '-':<20} "
            f"{_duration(row.seconds):<9} {row.start_time or '-':<20} {row.end_time or '-':<20} "
            f"{row.version}"
        )
    return EXIT_OK


@cli.command()
@click.argument("instance", metavar="INSTANCE|WORKFLOW")
@click.option("--task", metavar="NAME", help="Only this task's log.")
@target_option
def logs(instance: str, task: str | None, target_name: str | None) -> int:
    """Print the task logs of one run (or of a workflow's latest run)."""
    from gitsync import running, sync, which

    settings = config.load()
    target = settings.target(target_name)
    mask_secrets(sync.secrets_of_files(settings, target, strict=False))  # a task may echo one
    with sync.connect(settings, target) as client:
        if not which.is_instance_id(instance):
            name = _workflow(instance, settings, target, client)
            instance = _latest(client, target, name).instance_id
            echo(f"latest run of {name}: {instance}\n")
        found = running.logs_of(client, instance, task)
    if not found:
        echo(f"no task of {instance} has started yet: no logs")
    for name, status, text in found:
        echo(f"---- {name} ({status}) ----\n{text.rstrip()}\n")
    return EXIT_OK


@cli.command()
@click.argument("instance", metavar="INSTANCE|WORKFLOW")
@target_option
def cancel(instance: str, target_name: str | None) -> int:
    """Cancel a waiting or running run (or every one of a workflow); its processes are
    killed."""
    from gitsync import running, sync, which

    settings = config.load()
    target = settings.target(target_name)
    with sync.connect(settings, target) as client:
        chosen = [instance]
        if not which.is_instance_id(instance):
            name = _workflow(instance, settings, target, client)
            remote = target.naming().remote(name)
            rows = running.instances_of(client, remote, client.get_current_time())
            chosen = [r.instance_id for r in rows if not r.finished]
            if not chosen:
                raise GitsyncError(f"{name} has no waiting or running run to cancel")
        for one in chosen:
            client.cancel_flow_instance(one)
            echo(f"cancelled {one}")
    return EXIT_OK


def _workflow(text: str, settings: config.Settings, target: config.Target, client: Client) -> str:
    from gitsync import which

    return which.workflow_name(text, settings.flows, target.naming(), client)


def _latest(client: Client, target: config.Target, name: str) -> Instance:
    from gitsync import running

    remote = target.naming().remote(name)
    rows = running.instances_of(client, remote, client.get_current_time())
    if not rows:
        raise GitsyncError(f"{name} has not run yet: no logs")
    return rows[0]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
