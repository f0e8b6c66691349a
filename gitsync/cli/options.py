"""Options and output helpers shared by the commands that talk to a target."""

from __future__ import annotations

import sys
from typing import Any

import click

from gitsync import config, report

target_option = click.option(
    "--target",
    "target_name",
    metavar="NAME",
    help="Target from gitsync.yaml [default: $GITSYNC_TARGET, else 'local', the embedded engine].",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")


def prune_options(command: Any) -> Any:
    """--prune and its guard, shared by plan and apply so they always agree."""
    command = click.option(
        "--allow-mass-delete",
        is_flag=True,
        help="Allow deleting more than 10 workflows or 30% of those gitsync owns.",
    )(command)
    return click.option(
        "--prune", is_flag=True, help="Also delete managed workflows that have no file."
    )(command)


def runs_option(command: Any) -> Any:
    """--on-active-runs, shared by plan and apply: the plan shows what apply will do."""
    return click.option(
        "--on-active-runs",
        type=click.Choice(["stop", "wait", "cancel"]),
        default="stop",
        show_default=True,
        help=(
            "A change that would disturb a waiting or running instance (replace, move, delete, "
            "disable): stop = do not make it (apply exits 1); wait = make it once no run is "
            "left (--wait-timeout); cancel = cancel the runs, then make it."
        ),
    )(command)


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``30m`` or ``2h``."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a duration such as 90s, 30m or 2h") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise click.BadParameter(f"'{text}' is not a duration such as 90s, 30m or 2h")
    return seconds


class ProgressBar:
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


def render(plan: Any, target: str, output: str) -> str:
    if output == "json":
        return report.plan_json(plan, target)
    if output == "markdown":
        return report.plan_markdown(plan, target)
    return report.plan_text(plan, target)
