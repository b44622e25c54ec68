"""Org schedules: a cron expression in the org's time zone, as an APScheduler trigger.

Five fields are standard cron (``minute hour day month day_of_week``). Six fields put seconds
first (``second minute hour day month day_of_week``): operators use it to compress schedules
for soak tests and drills, e.g. ``*/5 * * * * *`` for every five seconds.

Weekday numbers mean what they mean in crontab (0 or 7 = Sunday, 1 = Monday). APScheduler 3.x
counts 0 as Monday, so ``1-5`` given to it directly would run Tuesday to Saturday; the weekday
field is therefore translated to day names before APScheduler sees it.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, tz: str = "UTC") -> CronTrigger:
    """The trigger for a 5- or 6-field cron expression; ValueError says what is wrong."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5 "
                         "(minute hour day month weekday) or 6 (with seconds first)")
    names = ("second", *_FIELDS) if len(fields) == 6 else _FIELDS
    values = dict(zip(names, fields, strict=True))
    values["day_of_week"] = crontab_weekdays(values["day_of_week"])
    trigger = OncePerWallTimeTrigger(**values, timezone=zoneinfo.ZoneInfo(tz))
    trigger.hourly = values["hour"].startswith("*")
    return trigger


class OncePerWallTimeTrigger(CronTrigger):
    """A cron trigger that, like crontab, runs a fixed-hour job once when clocks go back.

    When daylight saving time ends, the wall times of one hour happen twice; "30 2 * * *" would
    otherwise run twice that night. Schedules with a wildcard hour keep both occurrences: every
    real hour is still a new hour for them.
    """

    __slots__ = ("hourly",)

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime | None:
        fire = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and not self.hourly and _second_occurrence(fire):
            # Step on in UTC: local wall-clock arithmetic would drop the fold and go back.
            later = fire.astimezone(UTC) + timedelta(microseconds=1)
            fire = super().get_next_fire_time(previous_fire_time, later)
        return fire


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (numbers 0-7, names, ranges, lists, steps) as day names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        body, _, step = part.partition("/")
        if step and not step.isdigit():
            raise ValueError(f"weekday step {step!r} is not a number")
        days.update(_expand(body, int(step) if step else 1))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def _expand(body: str, step: int) -> range | list[int]:
    if body == "*":
        low, high = 0, 6
    elif "-" in body:
        low, high = (_day(token) for token in body.split("-", 1))
        high = 7 if high == 0 and low > 0 else high
    else:
        low = _day(body)
        high = 6 if step > 1 else low
    if high < low:
        raise ValueError(f"weekday range {body!r} runs backwards")
    return [day % 7 for day in range(low, high + 1, step)]


def _day(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token[:3] in _DAY_NAMES and len(token) == 3:
        return _DAY_NAMES.index(token)
    raise ValueError(f"weekday {token!r} is not 0-7 or a day name like mon")


def _second_occurrence(fire: datetime) -> bool:
    """Whether ``fire`` (aware, in its zone) is the repeat of a wall time clocks went back over."""
    if fire.fold == 1:
        return fire.replace(fold=0).utcoffset() != fire.utcoffset()
    return False


def next_fire(expression: str, tz: str, now: datetime) -> datetime | None:
    """The first time at or after ``now`` (aware) that the schedule fires, in UTC."""
    fire = cron_trigger(expression, tz).get_next_fire_time(None, now)
    return fire.astimezone(UTC) if fire is not None else None
