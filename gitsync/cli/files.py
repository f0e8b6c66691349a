"""Commands on the files alone: validate, init."""

from __future__ import annotations

from pathlib import Path

import click

from gitsync import config, report
from gitsync.cli.app import EXIT_ERROR, EXIT_OK, cli
from gitsync.cli.options import target_option
from gitsync.errors import GitsyncError
from gitsync.validate import ValidationResult, name_problems, validate_paths

SCHEMAS = ("workflow.schema.json", "gitsync.schema.json")


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
    result = checked(paths, target_name)
    text = report.validation_json(result) if fmt == "json" else report.validation_text(result)
    click.echo(text)
    return EXIT_OK if result.ok else EXIT_ERROR


def checked(paths: tuple[Path, ...], target_name: str | None) -> ValidationResult:
    """What ``validate`` checks, for the commands that read files the same way (graph)."""
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
        named = name_problems(target.naming(), one.workflows, settings.flows)
        result.problems = sorted({*result.problems, *one.problems, *named})
    return result


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing gitsync.yaml.")
def init(force: bool) -> int:
    """Write a commented starter gitsync.yaml, a flows/ folder and the schema."""
    settings = config.load()
    path = settings.base / config.CONFIG_FILE
    if path.exists() and not force:
        raise GitsyncError(f"{path} exists (use --force to overwrite it)")
    path.write_text(config.STARTER_HEADER + config.STARTER, "utf-8")
    (settings.base / config.DEFAULT_FLOWS).mkdir(exist_ok=True)
    copy_schemas(settings.base)
    _ignore_engine_data(settings.base / ".gitignore")
    click.echo(f"wrote {path}; put workflow files under {config.DEFAULT_FLOWS}/")
    return EXIT_OK


def copy_schemas(base: Path, names: tuple[str, ...] = SCHEMAS) -> None:
    """The schemas in the repository's ``schemas/`` (kept when there), so that the files'
    ``$schema`` headers point at a local copy that matches this version of gitsync."""
    from importlib import resources

    for name in names:
        schema = base / "schemas" / name
        if not schema.exists():
            schema.parent.mkdir(exist_ok=True)
            text = resources.files("gitsync").joinpath(f"schemas/{name}").read_text()
            schema.write_text(text, "utf-8")


def _ignore_engine_data(path: Path) -> None:
    """``.gitsync/`` (the engine's database and logs) in .gitignore: appended once, so that
    ``git add -A`` never stages it; the user's lines are kept as they are."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    lines = {line.strip() for line in text.splitlines()}
    if lines & {".gitsync/", ".gitsync", "/.gitsync/", "/.gitsync"}:
        return
    gap = "" if not text or text.endswith("\n") else "\n"
    path.write_text(f"{text}{gap}# gitsync's engine data (database, logs)\n.gitsync/\n", "utf-8")


# -- runs -----------------------------------------------------------------------------------
