"""Ticker symbols, validated once, and their safe partition keys and file names.

A ticker travels into partition keys, file paths, SQL and URLs, so it is validated here before it
reaches any of them: paths are never built from raw user input.
"""

from __future__ import annotations

from pathlib import Path

import yaml

# The rule lives in the lake contract (serving/ validates with it too); re-exported here.
from stock_assets.contract.keys import (
    MARKET_INDEX_KEY,
    MARKET_INDEX_SYMBOL,
    InvalidTickerError,
    validate_ticker,
)


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
