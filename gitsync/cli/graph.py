"""``gitsync graph``: draw one workflow file's DAG."""

from __future__ import annotations

from pathlib import Path

import click

from gitsync import graph as dag_picture
from gitsync import report
from gitsync.cli.app import EXIT_ERROR, EXIT_OK, cli
from gitsync.cli.files import checked
from gitsync.cli.options import target_option
from gitsync.errors import GitsyncError


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot", "svg"]),
    default="mermaid",
    show_default=True,
    help="Mermaid (GitHub and GitLab draw it in Markdown), Graphviz dot, or an SVG document.",
)
@target_option
def graph(path: Path, fmt: str, target_name: str | None) -> int:
    """Print the DAG of the workflow file PATH, checked first as ``validate`` checks it.

    Tasks are boxes, upstreams above what waits for them; another workflow, or one of its
    tasks, is a dashed node of its own. The SVG is laid out by gitsync itself.
    """
    if path.is_dir():
        raise GitsyncError(f"{path} is a folder: graph draws one workflow file")
    result = checked((path,), target_name)
    if not result.ok or not result.workflows:
        click.echo(report.validation_text(result))
        return EXIT_ERROR
    workflow = result.workflows[0]
    picture = dag_picture.graph_of(workflow)
    if fmt == "svg":
        from gitsync.graph_svg import svg  # grandalf is loaded only to draw

        click.echo(svg(picture, workflow.name), nl=False)
    elif fmt == "dot":
        click.echo(dag_picture.dot(picture, workflow.name), nl=False)
    else:
        click.echo(dag_picture.mermaid(picture), nl=False)
    return EXIT_OK
