"""Results -> text / JSON strings. No I/O: the CLI prints what these return."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from gitsync.changes import Kind
from gitsync.graph_plan import markdown as dag_markdown
from gitsync.graph_plan import picture
from gitsync.printable import printable
from gitsync.report_changes import body, change_json, has_body

if TYPE_CHECKING:  # the network side is imported only by the commands that use it
    from gitsync.applying import ApplyResult
    from gitsync.plan import Change, Plan
    from gitsync.validate import ValidationResult

FORMAT_VERSION = 1  # of validation_json
PLAN_FORMAT_VERSION = 2  # of plan_json: docs/plan-format.md, schemas/plan.schema.json


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def validation_text(result: ValidationResult) -> str:
    lines = [str(p) for p in result.problems]
    checked = len(result.files)
    if result.ok:
        lines.append(f"{plural(checked, 'file')} valid")
    else:
        bad = len({p.path for p in result.problems})
        lines.append(
            f"{plural(len(result.problems), 'problem')} in {bad} of {plural(checked, 'file')}"
        )
    return "\n".join(lines)


def validation_json(result: ValidationResult) -> str:
    return json.dumps(
        {
            "format_version": FORMAT_VERSION,
            "ok": result.ok,
            "files": len(result.files),
            "problems": [
                {"path": p.path, "line": p.line, "column": p.col, "message": p.message}
                for p in result.problems
            ],
        },
        indent=2,
        ensure_ascii=False,
    )


# -- plans -------------------------------------------------------------------------------

MARKDOWN_LIMIT = 60_000
PICTURE_NOTE = 300  # room kept for the line that says a DAG picture is left out
BLOCKED = "✗ blocked:"  # a change apply will not send, and why
CUT_ROOM = 2_000  # a change longer than the room left is cut if this much is left, else left out


def _where(change: Change) -> str:
    """Where the change is, as shown: names come from the service and are escaped."""
    if change.kind == Kind.CREATE_DIR:
        return "Workflow/" + printable(change.name)
    if change.kind == Kind.CREATE_FLOW and change.desired is not None:
        return f"{printable(change.name)} ({plural(len(change.desired.tasks), 'task')})"
    return printable(change.name)


def _md(text: str) -> str:
    """Text for a Markdown comment: no HTML, no table breaks."""
    return html.escape(text).replace("|", "&#124;")


def plan_summary(plan: Plan) -> str:
    parts = [_counted(plan.count(kind), kind) for kind in Kind if plan.count(kind)]
    return ", ".join(parts) if parts else "no changes"


def _counted(n: int, kind: Kind) -> str:
    """``n`` and the kind's summary words, a noun in them agreeing with ``n``."""
    words = kind.summary
    if n == 1:
        words = words.replace("directories ", "directory ")
    elif words.startswith("leftover "):
        words = "leftovers " + words.removeprefix("leftover ")
    return f"{n} {words}"


def plan_text(plan: Plan, target: str) -> str:
    lines = [f"Plan for {target}: {plan_summary(plan)}."]
    if plan.changes:
        lines.append("")
    for change in plan.listed():
        lines.append(f"{change.kind.symbol} {change.kind.verb:<8} {_where(change)}")
        lines.extend(f"      {printable(line)}" for line in body(change))
        if change.note:
            lines.append(f"      note: {printable(change.note)}")
        if change.blocked:
            lines.append(f"      {BLOCKED} {printable(change.blocked)}")
    if plan.notes:
        lines += ["", "Notes:"] + [f"  {printable(n)}" for n in plan.notes]
    if not plan.changes:
        lines.append("The remote matches the files.")
    return "\n".join(lines)


def plan_json(plan: Plan, target: str) -> str:
    return json.dumps(
        {
            "format_version": PLAN_FORMAT_VERSION,
            "target": target,
            "has_changes": plan.has_changes,
            "summary": {str(kind): plan.count(kind) for kind in Kind},
            "changes": [change_json(c) for c in plan.listed()],
            "notes": list(plan.notes),
        },
        indent=2,
        ensure_ascii=False,
    )


def plan_markdown(plan: Plan, target: str, limit: int = MARKDOWN_LIMIT) -> str:
    """For a pull-request comment: summary first, details folded, capped near ``limit``."""
    head = [f"### gitsync plan for {target}", "", f"**{plan_summary(plan)}**", ""]
    if not plan.changes:
        head.append("The remote matches the files.")
    else:
        head += ["| | change | workflow |", "|---|---|---|"]
        head += [
            f"| {c.kind.symbol} | {c.kind.verb}{' ✗ blocked' if c.blocked else ''} "
            f"| <code>{_md(_where(c))}</code> |"
            for c in plan.listed()
        ]
    text = "\n".join(head) + "\n"
    detailed = [c for c in plan.listed() if has_body(c) or c.note or c.blocked or picture(c)]
    for shown, change in enumerate(detailed):
        lines = body(change)  # only for the changes shown: a create's is all of it
        room = limit - 200 - len(text)
        block = _details(change, lines, limit)
        if len(block) > room and room >= CUT_ROOM:  # one long change: the start of it
            block = _details(change, lines, room)
        if len(block) > room:
            text += (
                f"\n_{len(detailed) - shown} more changes are not shown: the plan is "
                "longer than a comment can hold. Run `gitsync plan` for all of it._\n"
            )
            break
        text += block
    if plan.notes:
        notes = "\n".join(f"- {_md(printable(n))}" for n in plan.notes)
        if len(text) + len(notes) < limit - 100:
            text += f"\n**Notes**\n\n{notes}\n"
    return text


def _details(change: Change, lines: list[str], room: int) -> str:
    """One change folded, its lines cut (saying so) where they would pass ``room``."""
    head = (
        f"\n<details><summary>{change.kind.verb} <code>{_md(_where(change))}</code></summary>\n\n"
    )
    tail = (f"\n{_md(printable(change.note))}\n" if change.note else "") + (
        f"\n**{BLOCKED}** {_md(printable(change.blocked))}\n" if change.blocked else ""
    )
    budget = room - len(head) - len(tail) - 200 - (PICTURE_NOTE if picture(change) else 0)
    pre: list[str] = []
    for i, line in enumerate(lines):
        shown = _md(printable(line))
        budget -= len(shown) + 1
        if budget < 0:
            pre.append(f"… {len(lines) - i} more lines: run `gitsync plan` for all of them")
            break
        pre.append(shown)
    shown = head + (f"<pre>\n{chr(10).join(pre)}\n</pre>\n" if pre else "") + tail
    closing = "</details>\n"
    return shown + dag_markdown(change, room - len(shown) - len(closing) - 200) + closing


def apply_text(result: ApplyResult, total: int | None = None) -> str:
    """What apply did; ``total``: the changes it was to make, when it stopped before them all."""
    lines = []
    for outcome in result.outcomes:
        change = outcome.change
        status = "ok    " if outcome.ok else "HELD  " if outcome.held else "FAILED"
        lines.append(
            f"{status} {change.kind.verb:<8} {_where(change)}: {printable(outcome.message)}"
        )
    blocked = sum(1 for o in result.failed if o.held)
    failed = len(result.failed) - blocked
    done = len(result.outcomes) - failed - blocked
    held = f"; {blocked} blocked" if blocked else ""
    lines.append(
        f"Applied {done} of {len(result.outcomes) if total is None else total} changes{held}"
        + (f"; {failed} failed." if failed else ".")
    )
    return "\n".join(lines)
