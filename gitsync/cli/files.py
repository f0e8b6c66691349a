"""Commands on the files alone: validate, init."""

from __future__ import annotations

from pathlib import Path

import click

from gitsync import config, report
from gitsync.cli.app import EXIT_ERROR, EXIT_OK, cli
from gitsync.cli.options import target_option
from gitsync.errors import GitsyncError
from gitsync.validate import ValidationResult, validate_paths


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
@target_option
def validate(paths: tuple[Path, ...], fmt: str, target_name: str | None) -> int:
    """Check workflow files offline: YAML, schema, DAG, cron, names, variables.

    PATHS are folders or files; default: the flows root from gitsync.yaml, else flows/.
    The files are checked with each target's variables (``${env:...}`` is not read).
    """
    settings = config.load()
    roots = list(paths) or [settings.flows]
    missing = [p for p in roots if not p.exists()]
    if missing:
        raise GitsyncError(f"no such file or folder: {missing[0]}")
    targets = [settings.target(target_name)] if target_name else settings.all_targets()
    result = ValidationResult()
    for target in targets:
        substitution = settings.substitution(target, secrets=False)
        one = validate_paths(roots, settings.flows, settings.validation_cache(), substitution)
        result.files = one.files
        result.workflows = one.workflows
        result.problems = sorted({*result.problems, *one.problems})
    text = report.validation_json(result) if fmt == "json" else report.validation_text(result)
    click.echo(text)
    return EXIT_OK if result.ok else EXIT_ERROR


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
