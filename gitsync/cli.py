"""The command line: parse options, call the core, print, choose the exit code.

Exit codes: 0 ok, 1 error (including click's usage errors), 2 changes present (only with
``--detailed-exitcode``), 130 interrupted.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from gitsync import __version__, config, report
from gitsync.errors import GitsyncError, Interrupted, InvalidFilesError, PlanRefused
from gitsync.validate import validate_paths

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Group(click.Group):
    """Maps every way out to our exit codes, so usage errors never read as 'changes' (2)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.exceptions.Exit as e:
            code = e.exit_code
        except click.ClickException as e:
            e.show()
            code = EXIT_ERROR
        except click.Abort as e:  # click turns a KeyboardInterrupt into Abort
            if isinstance(e.__context__, Interrupted):
                click.echo(f"Interrupted ({e.__context__.name}).", err=True)
                code = e.__context__.exit_code
            else:
                click.echo("Aborted.", err=True)
                code = EXIT_INTERRUPTED
        except Interrupted as e:
            click.echo(f"Interrupted ({e.name}).", err=True)
            code = e.exit_code
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            code = EXIT_INTERRUPTED
        except InvalidFilesError as e:
            for problem in e.problems:
                click.echo(str(problem))
            click.echo(f"error: {e}", err=True)
            code = EXIT_ERROR
        except GitsyncError as e:
            click.echo(f"error: {e}", err=True)
            code = EXIT_ERROR
        except Exception as e:  # a bug: one line for the user, the details in a log file
            click.echo(f"error: unexpected {type(e).__name__}: {_crash_log(e)}", err=True)
            code = EXIT_ERROR
        sys.exit(code if isinstance(code, int) else EXIT_OK)


def _crash_log(error: Exception) -> str:
    """Write the traceback to the crash log; say where it is (or that it could not be)."""
    import datetime as dt
    import traceback

    path = config.crash_log()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"---- {dt.datetime.now(dt.UTC).isoformat()} gitsync {__version__} ")
            log.write(" ".join(sys.argv[1:2]) + "\n")  # the command, never its arguments
            log.write("".join(traceback.format_exception(error)))
    except OSError:
        return "a bug in gitsync (no log file could be written)"
    return f"a bug in gitsync; the details are in {path}"


class _EchoHandler(logging.Handler):
    """Log lines to whatever stderr is now (click's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"debug: {self.format(record)}", err=True)


_HANDLER = _EchoHandler()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitsync")
@click.option("--debug", is_flag=True, help="Show each request to the service on stderr.")
def cli(debug: bool) -> None:
    """Keep EnOS batch-processing workflows in git."""
    logger = logging.getLogger("gitsync")
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
def validate(paths: tuple[Path, ...], fmt: str) -> int:
    """Check workflow files offline: YAML, schema, DAG, cron, names.

    PATHS are folders or files; default: the flows root from gitsync.yaml, else flows/.
    """
    settings = config.load()
    roots = list(paths) or [settings.flows]
    missing = [p for p in roots if not p.exists()]
    if missing:
        raise GitsyncError(f"no such file or folder: {missing[0]}")
    result = validate_paths(roots, base=settings.flows, cache=settings.validation_cache())
    text = report.validation_json(result) if fmt == "json" else report.validation_text(result)
    click.echo(text)
    return EXIT_OK if result.ok else EXIT_ERROR


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
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    org_id: str | None,
    user_id: str | None,
    app_key: str | None,
    app_secret: str | None,
    parallelism: int | None,
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

_target_option = click.option(
    "--target",
    "target_name",
    metavar="NAME",
    help="Target from gitsync.yaml [default: $GITSYNC_TARGET, else 'local', the embedded engine].",
)
_quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")


def _prune_options(command: Any) -> Any:
    """--prune and its guard, shared by plan and apply so they always agree."""
    command = click.option(
        "--allow-mass-delete",
        is_flag=True,
        help="Allow deleting more than 10 workflows or 30% of those gitsync owns.",
    )(command)
    return click.option(
        "--prune", is_flag=True, help="Also delete managed workflows that have no file."
    )(command)


class _Bar:
    """A progress bar on stderr, only on a terminal, outside CI, for more than a few flows."""

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty() and not config.is_ci()
        self.bar: Any = None
        self.label = ""

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.enabled or total <= 5:
            return
        if self.bar is None or label != self.label:
            self.close()
            self.label = label
            self.bar = click.progressbar(length=total, label=label.capitalize(), file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(1)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _render(plan: Any, target: str, output: str) -> str:
    if output == "json":
        return report.plan_json(plan, target)
    if output == "markdown":
        return report.plan_markdown(plan, target)
    return report.plan_text(plan, target)


@cli.command()
@_target_option
@_prune_options
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
@_quiet_option
def plan(
    target_name: str | None,
    prune: bool,
    allow_mass_delete: bool,
    output: str,
    detailed_exitcode: bool,
    quiet: bool,
) -> int:
    """Show what apply would change on the target."""
    from gitsync import sync

    settings = config.load()
    target = settings.target(target_name)
    bar = _Bar(quiet)
    with sync.FilesBeingChecked(settings) as files, sync.connect(settings, target) as client:
        try:
            planned = sync.make_plan(client, target, files, prune, allow_mass_delete, bar)
        finally:
            bar.close()
    click.echo(_render(planned.plan, target.describe(), output))
    if detailed_exitcode and planned.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


@cli.command()
@_target_option
@_prune_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@click.option(
    "--force-unlock",
    is_flag=True,
    help="Remove a lock left by an apply that was killed, then apply.",
)
@_quiet_option
def apply(
    target_name: str | None,
    prune: bool,
    allow_mass_delete: bool,
    auto_approve: bool,
    force_unlock: bool,
    quiet: bool,
) -> int:
    """Make the target match the files."""
    from gitsync import remote, sync

    settings = config.load()
    target = settings.target(target_name)
    tree = sync.desired_tree(settings)
    if not auto_approve and not sys.stdin.isatty():
        raise PlanRefused(
            "no terminal to confirm on: run `gitsync plan` to review, then "
            "`gitsync apply --auto-approve`"
        )
    bar = _Bar(quiet)
    stopped: KeyboardInterrupt | None = None
    with (
        sync.connect(settings, target) as client,
        sync.locked(client, target, config.who(), force_unlock),
    ):
        planned = sync.make_plan(client, target, tree, prune, allow_mass_delete, bar)
        bar.close()
        click.echo(report.plan_text(planned.plan, target.describe()))
        if not planned.plan.has_changes:
            return EXIT_OK
        if not auto_approve and not click.confirm("\nApply these changes?", err=True):
            click.echo("Nothing was changed.", err=True)
            return EXIT_ERROR
        result = remote.ApplyResult()
        try:
            remote.apply(client, planned.plan, planned.state, bar, result)
        except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP: the lock is released next
            stopped = e
    bar.close()
    click.echo("")
    click.echo(report.apply_text(result))
    if stopped is not None:
        left = len(planned.plan.changes) - len(result.outcomes)
        click.echo(
            f"Stopped before {left} of {len(planned.plan.changes)} changes were done (a change "
            "in flight may have landed); the lock was released. Run apply again to finish.",
            err=True,
        )
        raise stopped
    return EXIT_ERROR if result.failed else EXIT_OK


@cli.command()
@_target_option
@click.option("--force", is_flag=True, help="Overwrite local files that differ.")
@_quiet_option
def pull(target_name: str | None, force: bool, quiet: bool) -> int:
    """Write the target's owned workflows as files."""
    from gitsync import pull as puller
    from gitsync import remote, sync

    settings = config.load()
    target = settings.target(target_name)
    bar = _Bar(quiet)
    with sync.connect(settings, target) as client:
        state = remote.read_state(client, target.root, bar)
    bar.close()
    result = puller.pull(state, settings.flows, settings.base, force)
    for path in result.written:
        click.echo(f"wrote     {path}")
    for path in result.refused:
        click.echo(f"differs   {path} (kept; --force overwrites it)")
    for where, why in result.skipped:
        click.echo(f"skipped   {where}: {why}")
    skipped = f", {len(result.skipped)} skipped" if result.skipped else ""
    click.echo(
        f"Pulled {len(result.written)} written, {len(result.unchanged)} unchanged, "
        f"{len(result.refused)} kept{skipped} from {target.describe()}."
    )
    return EXIT_ERROR if result.refused or result.skipped else EXIT_OK


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing gitsync.yaml.")
def init(force: bool) -> int:
    """Write a commented starter gitsync.yaml, a flows/ folder and the schema."""
    from importlib import resources

    settings = config.load()
    path = settings.base / config.CONFIG_FILE
    if path.exists() and not force:
        raise GitsyncError(f"{path} exists (use --force to overwrite it)")
    path.write_text(config.STARTER, "utf-8")
    (settings.base / config.DEFAULT_FLOWS).mkdir(exist_ok=True)
    schema = settings.base / "schemas" / "workflow.schema.json"
    if not schema.exists():
        schema.parent.mkdir(exist_ok=True)
        text = resources.files("gitsync").joinpath("schemas/workflow.schema.json").read_text()
        schema.write_text(text, "utf-8")
    click.echo(f"wrote {path}; put workflow files under {config.DEFAULT_FLOWS}/")
    return EXIT_OK


# -- runs -----------------------------------------------------------------------------------

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
@_target_option
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
    result = validate_paths([path], base=settings.flows)
    if not result.ok:
        raise InvalidFilesError(f"{path} is not valid; nothing was sent", result.problems)
    workflow = result.workflows[0]
    with sync.connect(settings, target) as client:
        applied = sync.apply_one(client, target, workflow, config.who(), force_unlock)
        if applied.failed:
            click.echo(report.apply_text(applied))
            return EXIT_ERROR
        instance_id = running.trigger(
            client, workflow.name, overrides, from_task, client.get_current_time()
        )
        click.echo(f"{workflow.name}: instance {instance_id} on {target.describe()}")
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
            click.echo(
                f"  {_MARK.get(event.status, event.status):<4} {event.task:<30} "
                f"{event.status:<8} {took}".rstrip()
            )
    assert end is not None
    for task, log in end.logs:
        click.echo(f"\n---- log of failed task {task} ----\n{log.rstrip()}")
    click.echo(f"\n{workflow.name}: {end.status} ({end.instance_id})")
    return EXIT_OK if end.status == "SUCCESS" else EXIT_ERROR


@cli.command()
@click.argument("flow")
@_target_option
def instances(flow: str, target_name: str | None) -> int:
    """List the runs of a workflow, newest first."""
    from gitsync import running, sync

    settings = config.load()
    target = settings.target(target_name)
    with sync.connect(settings, target) as client:
        rows = running.instances_of(client, flow, client.get_current_time())
    if not rows:
        click.echo(f"no instances of {flow}")
        return EXIT_OK
    click.echo(f"{'INSTANCE':<28} {'STATUS':<15} {'TRIGGER':<20} {'START':<20} END")
    for row in rows:
        click.echo(
            f"{row.instance_id:<28} {row.status:<15} {row.trigger_time:<20} "
            f"{row.start_time or '-':<20} {row.end_time or '-'}"
        )
    return EXIT_OK


@cli.command()
@click.argument("instance")
@click.option("--task", metavar="NAME", help="Only this task's log.")
@_target_option
def logs(instance: str, task: str | None, target_name: str | None) -> int:
    """Print the task logs of one run."""
    from gitsync import running, sync

    settings = config.load()
    target = settings.target(target_name)
    with sync.connect(settings, target) as client:
        found = running.logs_of(client, instance, task)
    for name, status, text in found:
        click.echo(f"---- {name} ({status}) ----\n{text.rstrip()}\n")
    return EXIT_OK


@cli.command()
@click.argument("instance")
@_target_option
def cancel(instance: str, target_name: str | None) -> int:
    """Cancel a waiting or running run; its processes are killed."""
    from gitsync import sync

    settings = config.load()
    target = settings.target(target_name)
    with sync.connect(settings, target) as client:
        client.cancel_flow_instance(instance)
    click.echo(f"cancelled {instance}")
    return EXIT_OK


def main() -> None:
    cli()
