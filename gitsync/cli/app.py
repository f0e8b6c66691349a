"""The command group and the one place that turns every way out into an exit code.

Exit codes: 0 ok, 1 error (including click's usage errors and bugs), 2 changes present (only
with ``--detailed-exitcode``), 130 interrupted, 143 / 129 stopped by SIGTERM / SIGHUP.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from gitsync import __version__, config
from gitsync.errors import GitsyncError, Interrupted, InvalidFilesError
from gitsync.printable import printable_lines
from gitsync.substitution import Secrets

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130
_SECRETS: list[Secrets] = []  # resolved secrets of this command: masked in all it prints


def mask_secrets(secrets: Secrets) -> None:
    """From now on, every line this command prints or logs has ``secrets`` masked."""
    _SECRETS.append(secrets)


def masked(text: str) -> str:
    for secrets in _SECRETS:
        text = secrets.mask(text)
    return text


def echo(text: str = "", err: bool = False) -> None:
    """click.echo behind the last-line masking filter (substitution.py)."""
    click.echo(masked(text), err=err)


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
                echo(str(problem))
            echo(f"error: {printable_lines(str(e))}", err=True)
            code = EXIT_ERROR
        except GitsyncError as e:
            echo(f"error: {printable_lines(str(e))}", err=True)
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
            log.write(masked("".join(traceback.format_exception(error))))
    except OSError:
        return "a bug in gitsync (no log file could be written)"
    return f"a bug in gitsync; the details are in {path}"


class _EchoHandler(logging.Handler):
    """Log lines to whatever stderr is now (click's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        echo(f"{record.levelname.lower()}: {self.format(record)}", err=True)


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
    _SECRETS.clear()  # a new command (tests run many in one process)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the completion script for SHELL.

    bash: eval "$(gitsync completion bash)" in ~/.bashrc; zsh: the same with zsh in
    ~/.zshrc; fish: gitsync completion fish > ~/.config/fish/completions/gitsync.fish
    """
    from click.shell_completion import get_completion_class

    script = get_completion_class(shell)
    assert script is not None  # click knows the three shells of the choice
    click.echo(script(cli, {}, "gitsync", "_GITSYNC_COMPLETE").source(), nl=False)
    return EXIT_OK
