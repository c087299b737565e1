"""Ticker symbols, validated once, and their safe partition keys and file names.

A ticker travels into partition keys, file paths, SQL and URLs, so it is validated here before it
reaches any of them: paths are never built from raw user input.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MARKET_INDEX_SYMBOL = "^GSPC"
MARKET_INDEX_KEY = "GSPC"

# Stock symbols as exchanges write them: AAPL, BRK-B, BRK.B, RDS-A. Upper case only: partition keys
# are identities, and `aapl` next to `AAPL` would be two partitions of the same stock.
_TICKER_PATTERN = re.compile(r"^[A-Z][A-Z0-9]{0,6}(?:[.-][A-Z0-9]{1,3})?$")
_INDEX_PATTERN = re.compile(r"^\^[A-Z][A-Z0-9]{0,7}$")


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


def to_symbol(key: str) -> str:
    """The symbol a market-data vendor knows for a partition key (`GSPC` -> `^GSPC`)."""
    validate_ticker(key)
    return MARKET_INDEX_SYMBOL if key == MARKET_INDEX_KEY else key


def csv_file_name(key: str) -> str:
    """`<KEY>.csv`: the layout of ../shared/data/prices, where ^GSPC is stored as GSPC.csv."""
    return f"{validate_ticker(key)}.csv"


def load_watchlist(path: Path) -> list[str]:
    """Partition keys of the tickers a user wants tracked (`tickers:` list in a YAML file).

    The market index is not listed: it is always present as its own assets.
    """
    if not path.exists():
        return []
    document = yaml.safe_load(path.read_text()) or {}
    raw = document.get("tickers", []) if isinstance(document, dict) else []
    if not isinstance(raw, list):
        raise InvalidTickerError(f"{path}: 'tickers' must be a list of symbols.")
    keys: list[str] = []
    for entry in raw:
        key = validate_ticker(entry)
        if key == MARKET_INDEX_KEY:
            continue
        if key not in keys:
            keys.append(key)
    return keys
