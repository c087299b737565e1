"""Partition keys: tickers, trading dates and a panel run's ticker selection, built and parsed here.

Why here: a key travels into file paths, run tags, SQL and URLs, so every producer (the assets, the
CLI, the sensors) and every reader (the IO manager, serving/) validates it with the same rule. The
current partitioning (docs/ARCHITECTURE.md): per-ticker assets use the dynamic `ticker` partition,
key = the ticker; the panel assets use the trading-date partition, key = YYYY-MM-DD, and a run
names its tickers in the `stock_assets/tickers` tag. No key combines both ("date|ticker").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

from stock_assets.contract.names import TICKERS_TAG

MARKET_INDEX_SYMBOL = "^GSPC"
MARKET_INDEX_KEY = "GSPC"

# Stock symbols as exchanges write them: AAPL, BRK-B, BRK.B, RDS-A. Upper case only: partition keys
# are identities, and `aapl` next to `AAPL` would be two partitions of the same stock.
_TICKER_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,6}(?:[.-][A-Z0-9]{1,3})?$")
_INDEX_PATTERN = re.compile(r"^\^[A-Z][A-Z0-9]{0,7}$")
_DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class InvalidTickerError(ValueError):
    """The text given as a ticker cannot be one (before any source is asked)."""


def validate_ticker(value: object) -> str:
    """Return the ticker's partition key, or raise InvalidTickerError saying what the rule is."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidTickerError("A ticker must be a non-empty string such as 'AAPL' or 'BRK-B'.")
    if value != value.strip():
        raise InvalidTickerError(f"Ticker {value!r} has surrounding whitespace.")
    if _INDEX_PATTERN.match(value):
        return value[1:]
    if not _TICKER_PATTERN.match(value):
        hint = f" Did you mean {value.upper()!r}?" if _TICKER_PATTERN.match(value.upper()) else ""
        raise InvalidTickerError(
            f"Invalid ticker {value!r}: use 1-7 upper-case letters/digits starting with a letter, "
            f"optionally a class suffix after '.' or '-' (e.g. 'AAPL', 'BRK-B'); indexes start "
            f"with '^' (e.g. '^GSPC').{hint}"
        )
    return value


def is_ticker_key(key: str) -> bool:
    """Whether `key` is already a ticker partition key (a lake file stem serving may list)."""
    try:
        return validate_ticker(key) == key
    except ValueError:
        return False


def date_key(value: date | str) -> str:
    """The trading-date partition key YYYY-MM-DD of a date (or of a key, validated)."""
    key = value.isoformat() if isinstance(value, date) else value
    if not isinstance(key, str) or not _DATE_PATTERN.match(key):
        raise ValueError(f"Invalid date partition {value!r}: expected YYYY-MM-DD.")
    try:
        date.fromisoformat(key)
    except ValueError as exc:
        raise ValueError(f"Invalid date partition {value!r}: expected YYYY-MM-DD.") from exc
    return key


def parse_date_key(key: str) -> date:
    """The date a trading-date partition key names."""
    return date.fromisoformat(date_key(key))


def is_date_key(key: str) -> bool:
    """Whether `key` looks like a date partition key (cheap: for filtering folder listings)."""
    return bool(_DATE_PATTERN.match(key))


def tickers_tag(tickers: Iterable[str]) -> dict[str, str]:
    """The run tag that restricts a panel run to `tickers` (validated, in order, no repeats)."""
    keys = list(dict.fromkeys(validate_ticker(t) for t in tickers))
    if not keys:
        raise ValueError("a ticker selection needs at least one ticker")
    return {TICKERS_TAG: ",".join(keys)}


def parse_tickers_tag(value: str | None) -> list[str] | None:
    """The tickers a tag names (None: no tag, i.e. every registered ticker)."""
    if value is None or not value.strip():
        return None
    return list(dict.fromkeys(validate_ticker(t.strip()) for t in value.split(",") if t.strip()))
