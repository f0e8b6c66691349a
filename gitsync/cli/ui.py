"""`gitsync ui`: open the engine's web dashboard, on an engine already running or a new one."""

from __future__ import annotations

import fcntl
import os
import webbrowser
from pathlib import Path

import click
import httpx

from gitsync import config, protocol
from gitsync.cli.app import EXIT_ERROR, EXIT_OK, cli, echo
from gitsync.cli.options import target_option

DEFAULT_PORT = 8765  # `gitsync serve`'s


def is_dashboard(url: str) -> bool:
    """Whether a gitsync engine with a dashboard answers at ``url``."""
    try:
        answer = httpx.get(url + "/", timeout=3)
    except httpx.HTTPError:
        return False
    return (
        answer.status_code == 200
        and protocol.ENGINE_HEADER in answer.headers
        and answer.headers.get("content-type", "").startswith("text/html")
    )


def engine_holds(data_dir: Path) -> bool:
    """Whether a live engine holds ``data_dir`` (it keeps a lock on its lock file)."""
    from gitsync.engine.address import LOCK_FILE

    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # flock needs no write: another's lock
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here at once
    return False


def _show(url: str, open_it: bool) -> None:
    echo(url)
    if open_it and not webbrowser.open(url):
        echo("no browser could be opened here: open the address above", err=True)


@cli.command()
@target_option
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=int,
    help="Where a new engine listens (0: any free); a running one is found by its data folder.",
)
@click.option("--no-open", is_flag=True, help="Print the address only; open no browser.")
def ui(target_name: str | None, port: int, no_open: bool) -> int:
    """Open the engine's web dashboard: the target's engine, or the local one (started here
    in the foreground, until Ctrl-C, when none is running on this repository's data)."""
    from gitsync.engine.server import EngineOptions, serve_forever

    settings = config.load()
    target = settings.target(target_name)
    if not target.embedded:
        if not is_dashboard(target.url):
            echo(f"{target.url} serves no gitsync dashboard (only `gitsync serve` does)", err=True)
            return EXIT_ERROR
        _show(target.url + "/", not no_open)
        return EXIT_OK
    if engine_holds(settings.engine_dir):  # its address file says where (engine/address.py)
        from gitsync.engine import address

        found = address.read(settings.engine_dir)
        if found is not None and is_dashboard(found.url):
            if found.kind == "embedded":
                echo(
                    f"this is the engine of another gitsync command (pid {found.pid}): "
                    "the page stops answering when that command ends",
                    err=True,
                )
            _show(found.url + "/", not no_open)
            return EXIT_OK
        echo(
            f"an engine is running on {settings.engine_dir} but its dashboard does not answer"
            + (f" at {found.describe()}" if found else "")
            + ": open the address its `gitsync serve` printed",
            err=True,
        )
        return EXIT_ERROR

    def ready(url: str) -> None:
        echo(
            f"gitsync engine serving {url}; data in {settings.engine_dir}; Ctrl-C to stop", err=True
        )
        _show(url + "/", not no_open)

    options = EngineOptions(settings.engine_dir, schedule=True)
    serve_forever(options, "127.0.0.1", port, ready)
    return EXIT_OK
