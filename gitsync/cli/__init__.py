"""The command line: parse options, call the core, print, choose the exit code. The only
package that prints or exits; its commands are spread over modules by what they work on."""

from gitsync.cli import ci, engine, files, graph, sync, ui  # noqa: F401  (each registers its commands)
from gitsync.cli.app import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli()
