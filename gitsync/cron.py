"""The service's cron dialect (Quartz, 6 or 7 fields), parsed once for validate and engine.

``seconds minutes hours day-of-month month day-of-week [year]``; exactly one of day-of-month
and day-of-week is ``?``. Next fire times are computed by croniter from the parsed fields.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


class CronError(ValueError):
    """A cron expression the service would reject; the message names the field."""


@dataclass(frozen=True)
class _Spec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()


_SPECS = (
    _Spec("seconds", 0, 59),
    _Spec("minutes", 0, 59),
    _Spec("hours", 0, 23),
    _Spec("day-of-month", 1, 31),
    _Spec("month", 1, 12, MONTHS),
    _Spec("day-of-week", 1, 7, DAYS),
    _Spec("year", 1970, 2099),
)


@dataclass(frozen=True)
class Field:
    """One parsed field: its text, and its values when it is a plain list/range/step."""

    text: str
    values: frozenset[int] | None

    @property
    def fixed(self) -> bool:
        """A single number: fires once per enclosing unit."""
        return self.values is not None and len(self.values) == 1 and self.text.isdigit()

    @property
    def every(self) -> bool:
        return self.text in ("*", "?")


@dataclass(frozen=True)
class QuartzCron:
    text: str
    seconds: Field
    minutes: Field
    hours: Field
    day_of_month: Field
    month: Field
    day_of_week: Field
    year: Field

    def fields(self) -> tuple[Field, ...]:
        return (
            self.seconds,
            self.minutes,
            self.hours,
            self.day_of_month,
            self.month,
            self.day_of_week,
            self.year,
        )


def _number(token: str, spec: _Spec) -> int:
    upper = token.upper()
    if spec.names and upper in spec.names:
        return spec.names.index(upper) + 1
    if not token.isdigit():
        raise CronError(f"{spec.name} field: '{token}' is not a number")
    value = int(token)
    if not spec.low <= value <= spec.high:
        raise CronError(f"{spec.name} field: {value} is outside {spec.low}-{spec.high}")
    return value


def _part(part: str, spec: _Spec) -> set[int]:
    step = 1
    had_step = "/" in part
    if had_step:
        part, _, step_text = part.partition("/")
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{spec.name} field: step '{step_text}' must be a positive number")
        step = int(step_text)
        if part == "":
            raise CronError(f"{spec.name} field: '/' needs a start, as in '*/{step}' or '0/{step}'")
    if part == "*":
        low, high = spec.low, spec.high
    elif "-" in part:
        first, _, last = part.partition("-")
        low, high = _number(first, spec), _number(last, spec)
        if low > high:
            raise CronError(f"{spec.name} field: range '{part}' runs backwards")
    else:
        low = _number(part, spec)
        high = spec.high if had_step else low
    return set(range(low, high + 1, step))


def _special_dom(text: str) -> bool:
    if text in ("L", "LW"):
        return True
    if text.startswith("L-") and text[2:].isdigit() and 1 <= int(text[2:]) <= 30:
        return True
    return text.endswith("W") and text[:-1].isdigit() and 1 <= int(text[:-1]) <= 31


def _special_dow(text: str) -> bool:
    upper = text.upper()
    if upper == "L":
        return True
    if upper.endswith("L"):
        day = upper[:-1]
        return day in DAYS or (day.isdigit() and 1 <= int(day) <= 7)
    if "#" in upper:
        day, _, nth = upper.partition("#")
        ok_day = day in DAYS or (day.isdigit() and 1 <= int(day) <= 7)
        return ok_day and nth.isdigit() and 1 <= int(nth) <= 5
    return False


def _field(text: str, spec: _Spec) -> Field:
    if text == "?":
        if spec.name not in ("day-of-month", "day-of-week"):
            raise CronError(
                f"{spec.name} field: '?' is only allowed in day-of-month or day-of-week"
            )
        return Field(text, None)
    if spec.name == "day-of-month" and _special_dom(text):
        return Field(text, None)
    if spec.name == "day-of-week" and _special_dow(text):
        return Field(text, None)
    if text == "":
        raise CronError(f"{spec.name} field is empty")
    values: set[int] = set()
    for part in text.split(","):
        if part == "":
            raise CronError(f"{spec.name} field: empty item in '{text}'")
        values |= _part(part, spec)
    return Field(text, frozenset(values))


def parse(text: str) -> QuartzCron:
    parts = text.split()
    if len(parts) not in (6, 7):
        raise CronError(
            f"expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week "
            f"[year]), got {len(parts)}"
        )
    if len(parts) == 6:
        parts.append("*")
    fields = [_field(p, s) for p, s in zip(parts, _SPECS, strict=True)]
    dom, dow = parts[3], parts[5]
    if (dom == "?") == (dow == "?"):
        raise CronError(
            f"exactly one of day-of-month and day-of-week must be '?' (got '{dom}' and '{dow}')"
        )
    return QuartzCron(text, *fields)


_FINER = {
    "minute": ("seconds",),
    "hour": ("seconds", "minutes"),
    "day": ("seconds", "minutes", "hours"),
    "week": ("seconds", "minutes", "hours"),
    "month": ("seconds", "minutes", "hours"),
}


def check_cycle(cron: QuartzCron, cycle: str) -> str | None:
    """Why ``cron`` does not fire once per ``cycle``, or None when it fits."""
    named = dict(zip(("seconds", "minutes", "hours"), cron.fields(), strict=False))
    loose = [n for n in _FINER[cycle] if not named[n].fixed]
    if loose:
        shown = ", ".join(f"{n} is '{named[n].text}'" for n in loose)
        units = _FINER[cycle]
        listed = " and ".join(filter(None, (", ".join(units[:-1]), units[-1])))
        return f"cycle '{cycle}' needs a single value in {listed}; {shown}"
    dom, dow = cron.day_of_month, cron.day_of_week
    if cycle == "day" and not (dom.every and dow.every):
        return "cycle 'day' fires every day: day-of-month and day-of-week must be '*' or '?'"
    if cycle == "week" and (dow.every or dom.text != "?"):
        return "cycle 'week' needs day-of-week set (e.g. MON) and day-of-month '?'"
    if cycle == "month" and (dom.every or dow.text != "?"):
        return "cycle 'month' needs day-of-month set (e.g. 1) and day-of-week '?'"
    return None


def validate(text: str, cycle: str | None = None) -> str | None:
    """A one-line reason the expression is unusable, or None."""
    try:
        cron = parse(text)
    except CronError as e:
        return f"invalid cron '{text}': {e}"
    if cycle is not None:
        reason = check_cycle(cron, cycle)
        if reason:
            return f"cron '{text}' does not match the cycle: {reason}"
    return None


def is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _croniter_field(text: str, day_of_week: bool) -> str:
    """One Quartz field in croniter's words: ``?`` is ``*``; days of week count from 0."""
    if text == "?":
        return "*"
    if not day_of_week:
        return text
    upper = text.upper()
    if upper == "L":
        return "6"  # Quartz: L alone in day-of-week is Saturday
    if upper.endswith("L") and upper[:-1].isdigit():
        return f"L{int(upper[:-1]) - 1}"
    if "#" in upper and upper.partition("#")[0].isdigit():
        day, _, nth = upper.partition("#")
        return f"{int(day) - 1}#{nth}"

    def shift(token: str) -> str:
        return str(int(token) - 1) if token.isdigit() else token

    parts = []
    for part in text.split(","):
        base, slash, step = part.partition("/")
        base = "-".join(shift(t) for t in base.split("-"))
        parts.append(base + slash + step)
    return ",".join(parts)


def next_fire(cron: QuartzCron, after: dt.datetime) -> dt.datetime | None:
    """The first fire time strictly after ``after`` (same time zone), or None if none is left
    (a year field that has passed). croniter does the date arithmetic."""
    from croniter import croniter

    fields = [f.text for f in cron.fields()[:6]]
    expression = " ".join([*fields[:5], _croniter_field(fields[5], True)])
    expression = " ".join(
        _croniter_field(f, False) if i < 5 else f for i, f in enumerate(expression.split())
    )
    years = cron.year.values
    it = croniter(expression, after, second_at_beginning=True)
    for _ in range(10_000):
        moment: dt.datetime = it.get_next(dt.datetime)
        if years is None or moment.year in years:
            return moment
        if years and moment.year > max(years):
            return None
    return None


def next_fire_from(cron: QuartzCron, start: str, after: dt.datetime) -> dt.datetime | None:
    """The first fire strictly after ``after`` on or after the start date (``start``, a
    workflow's effective date, when it is one)."""
    if is_date(start):
        day_before = dt.datetime.fromisoformat(start) - dt.timedelta(seconds=1)
        after = max(after, day_before.replace(tzinfo=after.tzinfo))
    return next_fire(cron, after)
