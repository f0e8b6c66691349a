"""The command line: parse options, call the core, print, choose the exit code.

Exit codes: 0 ok, 1 error (including click's usage errors), 2 changes present (only with
``--detailed-exitcode``), 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from gitsync import __version__, config, report
from gitsync.errors import GitsyncError
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
        except click.Abort:
            click.echo("Aborted.", err=True)
            code = EXIT_INTERRUPTED
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            code = EXIT_INTERRUPTED
        except GitsyncError as e:
            click.echo(f"error: {e}", err=True)
            code = EXIT_ERROR
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitsync")
def cli() -> None:
    """Keep EnOS batch-processing workflows in git."""


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
    result = validate_paths(roots, base=settings.flows)
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
def serve(
    host: str,
    port: int,
    data_dir: Path | None,
    org_id: str | None,
    user_id: str | None,
    app_key: str | None,
    app_secret: str | None,
) -> None:
    """Run the bundled reference engine in the foreground until Ctrl-C."""
    from gitsync.engine.server import EngineOptions, User, serve_forever

    if bool(org_id) != bool(user_id):
        raise click.UsageError("--org-id and --user-id go together")
    if bool(app_key) != bool(app_secret):
        raise click.UsageError("--app-key and --app-secret go together")
    settings = config.load()
    options = EngineOptions(
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


def main() -> None:
    cli()
