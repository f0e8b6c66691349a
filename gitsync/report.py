"""Results -> text / JSON strings. No I/O: the CLI prints what these return."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from gitsync.changes import Kind
from gitsync.graph_plan import markdown as dag_markdown
from gitsync.graph_plan import picture
from gitsync.printable import printable, printable_lines

if TYPE_CHECKING:  # the network side is imported only by the commands that use it
    from gitsync.applying import ApplyResult
    from gitsync.plan import Change, Plan
    from gitsync.validate import ValidationResult

FORMAT_VERSION = 1


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
BLOCKED = "✗ blocked:"  # a change apply will not send, and why


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
    parts = [f"{plan.count(kind)} {kind.summary}" for kind in Kind if plan.count(kind)]
    return ", ".join(parts) if parts else "no changes"


def plan_text(plan: Plan, target: str) -> str:
    lines = [f"Plan for {target}: {plan_summary(plan)}."]
    if plan.changes:
        lines.append("")
    for change in plan.listed():
        lines.append(f"{change.kind.symbol} {change.kind.verb:<8} {_where(change)}")
        lines.extend(f"      {printable(line)}" for line in change.lines)
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
            "format_version": FORMAT_VERSION,
            "target": target,
            "has_changes": plan.has_changes,
            "summary": {str(kind): plan.count(kind) for kind in Kind},
            "changes": [_change_json(c) for c in plan.listed()],
            "notes": list(plan.notes),
        },
        indent=2,
        ensure_ascii=False,
    )


def _change_json(change: Change) -> dict[str, object]:
    """One change: ``action`` names its kind; ``renamed_from`` and ``blocked`` when set."""
    out: dict[str, object] = {
        "action": str(change.kind),
        "path": _where(change),
        "details": list(change.lines),
        "note": change.note,
    }
    if change.renamed_from:
        out["renamed_from"] = change.renamed_from
    if change.blocked:
        out["blocked"] = change.blocked
    return out


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
    detailed = [c for c in plan.listed() if c.lines or c.note or c.blocked or picture(c)]
    for shown, change in enumerate(detailed):
        body = "\n".join(change.lines)
        block = (
            f"\n<details><summary>{change.kind.verb} <code>{_md(_where(change))}</code>"
            f"</summary>\n\n"
            + (f"<pre>\n{_md(printable_lines(body))}\n</pre>\n" if body else "")
            + (f"\n{_md(printable(change.note))}\n" if change.note else "")
            + (f"\n**{BLOCKED}** {_md(printable(change.blocked))}\n" if change.blocked else "")
        )
        room = limit - 211 - len(text) - len(block)  # 11: the closing tag
        block += dag_markdown(change, room) + "</details>\n"
        if len(text) + len(block) > limit - 200:
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


def apply_text(result: ApplyResult) -> str:
    lines = []
    for outcome in result.outcomes:
        change = outcome.change
        status = "ok    " if outcome.ok else "HELD  " if change.blocked else "FAILED"
        lines.append(
            f"{status} {change.kind.verb:<8} {_where(change)}: {printable(outcome.message)}"
        )
    blocked = sum(1 for o in result.failed if o.change.blocked)
    failed = len(result.failed) - blocked
    done = len(result.outcomes) - failed - blocked
    held = f"; {blocked} blocked" if blocked else ""
    lines.append(
        f"Applied {done} of {len(result.outcomes)} changes{held}"
        + (f"; {failed} failed." if failed else ".")
    )
    return "\n".join(lines)
