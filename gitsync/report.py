"""Results -> text / JSON strings. No I/O: the CLI prints what these return."""

from __future__ import annotations

import json

from gitsync.validate import ValidationResult

FORMAT_VERSION = 1


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def validation_text(result: ValidationResult) -> str:
    lines = [str(p) for p in result.problems]
    checked = len(result.files)
    if result.ok:
        lines.append(f"{_plural(checked, 'file')} valid")
    else:
        bad = len({p.path for p in result.problems})
        lines.append(
            f"{_plural(len(result.problems), 'problem')} in {bad} of {_plural(checked, 'file')}"
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
