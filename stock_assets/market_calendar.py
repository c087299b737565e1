"""The NYSE trading calendar (exchange-calendars), built once per process.

Freshness, gaps, the synthetic market's days, forecast target dates and "is the market open" all
ask the same calendar, so a holiday means the same thing everywhere. "Trading day" means a session
of the exchange calendar (XNYS by default), which already leaves out real closures (holidays,
2001-09-11..14, Hurricane Sandy 2012-10-29/30, national days of mourning such as 2007-01-02).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from exchange_calendars import ExchangeCalendar

EXCHANGE = "XNYS"
# First date the cached calendars cover: before ^GSPC's history (1982) with room to spare.
CALENDAR_START = date(1970, 1, 2)


@lru_cache(maxsize=8)
def trading_calendar(name: str = EXCHANGE) -> ExchangeCalendar:
    """The exchange calendar `name` from CALENDAR_START to a year ahead, built once per process.

    `exchange_calendars.get_calendar(name)` alone only covers the last 20 years, and building one
    costs ~0.4 s, hence the explicit start and the cache. Imported lazily (0.6 s import).
    """
    import exchange_calendars

    return exchange_calendars.get_calendar(name, start=CALENDAR_START.isoformat())


def _covered(day: date, calendar: str) -> None:
    cal = trading_calendar(calendar)
    first, last = cal.first_session.date(), cal.last_session.date()
    if not first <= day <= last:
        raise ValueError(f"{day} is outside the {calendar} calendar's range {first}..{last}.")


def trading_sessions(start: date, end: date, calendar: str = EXCHANGE) -> pl.Series:
    """The sessions from start to end, both inclusive, as a `pl.Date` Series named `date`."""
    if start > end:
        return pl.Series("date", [], dtype=pl.Date)
    _covered(start, calendar)
    _covered(end, calendar)
    sessions = trading_calendar(calendar).sessions_in_range(start.isoformat(), end.isoformat())
    return pl.Series("date", sessions.to_numpy().astype("datetime64[D]")).cast(pl.Date)


def last_session_on_or_before(day: date, calendar: str = EXCHANGE) -> date:
    """The latest session whose date is `day` or earlier (Friday for a Sunday)."""
    _covered(day, calendar)
    return trading_calendar(calendar).date_to_session(day.isoformat(), direction="previous").date()


def last_completed_session(now: datetime | None = None, calendar: str = EXCHANGE) -> date:
    """The latest session whose close is at or before `now` (default: the current UTC time)."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("last_completed_session needs a timezone-aware datetime.")
    session = last_session_on_or_before(now.date(), calendar)
    cal = trading_calendar(calendar)
    if cal.session_close(session.isoformat()).to_pydatetime() > now:
        session = cal.previous_session(session.isoformat()).date()
    return session



def is_session(day: date, calendar: str = EXCHANGE) -> bool:
    _covered(day, calendar)
    return bool(trading_calendar(calendar).is_session(day.isoformat()))


def next_sessions(after: date, count: int, calendar: str = EXCHANGE) -> list[date]:
    """The `count` sessions strictly after `after` (a forecast's target dates)."""
    cal = trading_calendar(calendar)
    sessions: list[date] = []
    cursor = last_session_on_or_before(after, calendar)
    for _ in range(count):
        cursor = cal.next_session(cursor.isoformat()).date()
        sessions.append(cursor)
    return sessions
