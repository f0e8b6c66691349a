"""The engine and runs: serve, run, instances, logs, cancel."""

from __future__ import annotations

from pathlib import Path

import click

from gitsync import config, report
from gitsync.cli.app import EXIT_ERROR, EXIT_OK, cli, echo, mask_secrets
from gitsync.cli.options import target_option
from gitsync.errors import InvalidFilesError
from gitsync.validate import validate_paths


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


_MARK = {
    "SUCCESS": "ok  ",
    "FAIL": "FAIL",
    "TIMEOUT": "TIME",
    "SKIP": "skip",
    "CANCEL": "stop",
    "INTERNAL_ERROR": "ERR ",
    "RUNNING": " .. ",
}


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        out[key] = value
    return out


@cli.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
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
def run(
    path: Path,
    params: tuple[str, ...],
    from_task: str | None,
    target_name: str | None,
    force_unlock: bool,
) -> int:
    """Apply one workflow file, run it, and follow it to the end."""
    from gitsync import running, sync

    overrides = _params(params)
    settings = config.load()
    target = settings.target(target_name)
    result = validate_paths([path], settings.flows, None, settings.substitution(target))
    mask_secrets(result.secrets)
    if not result.ok:
        raise InvalidFilesError(f"{path} is not valid; nothing was sent", result.problems)
    workflow = result.workflows[0]
    with sync.connect(settings, target) as client:
        applied = sync.apply_one(client, target, workflow, config.who(), force_unlock)
        if applied.failed:
            echo(report.apply_text(applied))
            return EXIT_ERROR
        remote_name = target.naming().remote(workflow.name)
        instance_id = running.trigger(
            client, remote_name, overrides, from_task, client.get_current_time()
        )
        echo(f"{workflow.name}: instance {instance_id} on {target.describe()}")
        end = None
        for event in running.follow(client, instance_id):
            if isinstance(event, running.RunEnd):
                end = event
                break
            if event.status in ("INIT", "WAIT", "READY"):
                continue
            took = f"{event.seconds:6.2f}s" if event.seconds is not None else ""
            if event.within is not None:
                took = f"<{event.within:5.2f}s"
            echo(
                f"  {_MARK.get(event.status, event.status):<4} {event.task:<30} "
                f"{event.status:<8} {took}".rstrip()
            )
    assert end is not None
    for task, log in end.logs:
        echo(f"\n---- log of failed task {task} ----\n{log.rstrip()}")
    echo(f"\n{workflow.name}: {end.status} ({end.instance_id})")
    return EXIT_OK if end.status == "SUCCESS" else EXIT_ERROR


@cli.command()
@click.argument("flow")
@target_option
def instances(flow: str, target_name: str | None) -> int:
    """List the runs of a workflow and of its retired versions, newest first."""
    from gitsync import running, sync

    settings = config.load()
    target = settings.target(target_name)
    with sync.connect(settings, target) as client:
        rows = running.instances_of(client, target.naming().remote(flow), client.get_current_time())
    if not rows:
        echo(f"no instances of {flow}")
        return EXIT_OK
    echo(f"{'INSTANCE':<28} {'STATUS':<15} {'TRIGGER':<20} {'START':<20} {'END':<20} VERSION")
    for row in rows:
        echo(
            f"{row.instance_id:<28} {row.status:<15} {row.trigger_time:<20} "
            f"{row.start_time or '-':<20} {row.end_time or '-':<20} {row.version}"
        )
    return EXIT_OK


@cli.command()
@click.argument("instance")
@click.option("--task", metavar="NAME", help="Only this task's log.")
@target_option
def logs(instance: str, task: str | None, target_name: str | None) -> int:
    """Print the task logs of one run."""
    from gitsync import running, sync

    settings = config.load()
    target = settings.target(target_name)
    mask_secrets(sync.secrets_of_files(settings, target, strict=False))  # a task may echo one
    with sync.connect(settings, target) as client:
        found = running.logs_of(client, instance, task)
    for name, status, text in found:
        echo(f"---- {name} ({status}) ----\n{text.rstrip()}\n")
    return EXIT_OK


@cli.command()
@click.argument("instance")
@target_option
def cancel(instance: str, target_name: str | None) -> int:
    """Cancel a waiting or running run; its processes are killed."""
    from gitsync import sync

    settings = config.load()
    target = settings.target(target_name)
    with sync.connect(settings, target) as client:
        client.cancel_flow_instance(instance)
    echo(f"cancelled {instance}")
    return EXIT_OK
