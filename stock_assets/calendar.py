"""The NYSE trading calendar (exchange-calendars), loaded once per process.

Freshness, gaps, forecast target dates and "is the market open today" all ask the same calendar,
so a holiday means the same thing everywhere.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import pandas as pd

EXCHANGE = "XNYS"


@lru_cache(maxsize=4)
def exchange_calendar(name: str = EXCHANGE):
    import exchange_calendars

    return exchange_calendars.get_calendar(name)


def sessions_between(start: date, end: date, name: str = EXCHANGE) -> list[date]:
    """Trading sessions from start to end inclusive (clipped to the calendar's bounds)."""
    calendar = exchange_calendar(name)
    first = max(pd.Timestamp(start), calendar.first_session)
    last = min(pd.Timestamp(end), calendar.last_session)
    if first > last:
        return []
    return [ts.date() for ts in calendar.sessions_in_range(first, last)]


def is_session(day: date, name: str = EXCHANGE) -> bool:
    return exchange_calendar(name).is_session(pd.Timestamp(day))


def next_sessions(after: date, count: int, name: str = EXCHANGE) -> list[date]:
    """The `count` trading sessions strictly after `after` (forecast target dates)."""
    calendar = exchange_calendar(name)
    sessions: list[date] = []
    cursor = pd.Timestamp(after)
    while len(sessions) < count:
        cursor = calendar.next_session(cursor) if calendar.is_session(cursor) else (
            calendar.date_to_session(cursor, direction="next")
        )
        sessions.append(cursor.date())
    return sessions


def last_completed_session(now: datetime | None = None, name: str = EXCHANGE) -> date:
    """The most recent session whose close has passed at `now` (UTC)."""
    calendar = exchange_calendar(name)
    now = now or datetime.now(timezone.utc)
    minute = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(
        now, tz="UTC"
    )
    session = calendar.minute_to_past_session(minute.floor("min"), count=1)
    return session.date()


def previous_session(day: date, name: str = EXCHANGE) -> date:
    calendar = exchange_calendar(name)
    return calendar.date_to_session(pd.Timestamp(day - timedelta(days=1)), direction="previous").date()
