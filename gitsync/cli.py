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


def main() -> None:
    cli()
