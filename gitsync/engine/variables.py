"""Parameters in commands: ``${NAME}`` from the flow's parameters and the service's system
variables (SPEC §4.3), computed from the trigger time. Unknown names are left as written."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Mapping

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")
_OFFSET = re.compile(r"^(cal_dt8?)-(\d+)$")


def _d10(day: dt.date) -> str:
    return day.isoformat()


def _d8(day: dt.date) -> str:
    return day.strftime("%Y%m%d")


def system_variables(trigger: dt.datetime) -> dict[str, str]:
    """The business date is the trigger date minus one day (SPEC §4.3)."""
    business = trigger.date() - dt.timedelta(days=1)
    month_start = business.replace(day=1)
    month_end = business.replace(day=calendar.monthrange(business.year, business.month)[1])
    last_month_end = month_start - dt.timedelta(days=1)
    last_month_start = last_month_end.replace(day=1)
    next_monday = business + dt.timedelta(days=7 - business.weekday())
    hour_ago = trigger - dt.timedelta(days=1, hours=1)  # an hour before the business time
    out = {
        "cal_dt": _d10(business),
        "cal_dt8": _d8(business),
        "ncal_dt": _d10(business + dt.timedelta(days=1)),
        "ncal_dt8": _d8(business + dt.timedelta(days=1)),
        "30days_cal_dt": _d10(business - dt.timedelta(days=30)),
        "hcal_dt8": _d8(hour_ago.date()),
        "cal_hr": f"{hour_ago.hour:02d}",
        "this_hour": trigger.strftime("%Y-%m-%d %H:00:00"),
        "unix_timestamp": str(int(trigger.timestamp())),
    }
    for name, day in (
        ("last_week", business - dt.timedelta(days=6)),
        ("first_day_this_month", month_start),
        ("end_day_this_month", month_end),
        ("first_day_last_month", last_month_start),
        ("last_day_last_month", last_month_end),
        ("monday_next_week", next_monday),
    ):
        out[f"{name}10"] = _d10(day)
        out[f"{name}8"] = _d8(day)
    return out


def substitute(text: str, values: Mapping[str, str], trigger: dt.datetime) -> str:
    business = trigger.date() - dt.timedelta(days=1)

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        offset = _OFFSET.match(name)
        if offset:
            day = business - dt.timedelta(days=int(offset.group(2)))
            return _d8(day) if offset.group(1) == "cal_dt8" else _d10(day)
        return match.group(0)

    return _PLACEHOLDER.sub(one, text)
