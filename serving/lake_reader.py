"""Read-only access to the Parquet lake, fast enough to sit under every request.

Dagster replaces partition files atomically (`os.replace`) while the API runs. So each read stats
the file and reuses the parsed table only while its (inode, mtime, size) is unchanged: a new
partition is served on the next request, with no restart and no half-written file. Directory
listings are cached the same way, keyed by the folder's (inode, mtime); a listing taken less than
`RACY_WINDOW_NS` after the folder changed is not trusted (a second change within the same
filesystem clock tick would keep the mtime), the same guard git uses for its index. Finished
answers are kept for `revalidate_seconds` (0.1 s by default), so under load the lake is checked a
few times a second instead of a few times per request.

Tickers and dates are validated before they become path components, and the lake is never
written: the API needs no lock and cannot corrupt what the pipeline produced.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

import polars as pl

from serving.lake_errors import (  # noqa: F401  (re-exported: routes import them here)
    LakeDataError,
    LakeLookupError,
    NotMaterializedError,
    UnknownTickerError,
)
from stock_assets.contract import (  # noqa: F401  (the asset names, re-exported for the routes)
    AGENT_REPORT,
    CHILD_MODEL,
    DAILY_FORECAST,
    FORECAST_PERFORMANCE,
    MARKET_INDEX_KEY,
    MARKET_INDEX_PRICES,
    MODEL_HISTORY,
    PARENT_MODEL,
    RAW_PRICES,
    STAGE_OF_ASSET,
    is_date_key,
    is_ticker_key,
    lake_file,
    lake_folder,
    missing_required,
    validate_ticker,
    with_optional_columns,
)
from stock_assets.contract.paths import PARQUET

RACY_WINDOW_NS = 2_000_000_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Partition:
    """One parsed lake file and the identity of the file it came from."""

    asset: str
    ticker: str
    key: str  # the ticker for ticker partitions, the date for date x ticker partitions
    # (inode, mtime_ns, size): changes whenever the file is replaced. A file written moments
    # ago gets a unique 4th element instead, so that nothing derived from it is cached yet.
    signature: tuple[int, ...]
    frame: pl.DataFrame

    @property
    def is_empty(self) -> bool:
        return self.frame.height == 0

    @property
    def identity(self) -> tuple[str, str, str, tuple[int, ...]]:
        """Names this exact file version: a cache key for anything derived from it."""
        return (self.asset, self.ticker, self.key, self.signature)


@dataclass(frozen=True, slots=True)
class _Listing:
    signature: tuple[int, int]
    keys: tuple[str, ...]
    trusted: bool


def materialize_hint(asset: str, ticker: str) -> str:
    stage = STAGE_OF_ASSET.get(asset, "data")
    return (
        f"materialize {asset} for {ticker} "
        f"(e.g. `python -m stock_assets materialize --tickers {ticker} --stages {stage}`)"
    )


class LakeReader:
    """Cached, read-only views of lake partitions; one instance per app, shared by requests.

    Paths are the contract's `lake_file` over validated parts: plain strings, because pathlib
    costs more per request than the cached lookups it would wrap.
    """

    def __init__(
        self,
        base_dir: Path,
        max_files: int = 8192,
        max_derived: int = 4096,
        revalidate_seconds: float = 0.0,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.revalidate_ns = int(revalidate_seconds * 1e9)
        self._answers: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._base = str(self.base_dir)
        self._files: OrderedDict[str, Partition] = OrderedDict()
        self._listings: dict[str, _Listing] = {}
        self._filtered: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self._derived: OrderedDict[Hashable, object] = OrderedDict()
        self._max_files = max_files
        self._max_derived = max_derived
        self._unsettled = itertools.count()
        self._lock = threading.Lock()

    # -- files and folders -------------------------------------------------------------------

    def read(self, asset: str, path: str, ticker: str, key: str) -> Partition | None:
        """The parsed file at `path`, or None when it does not exist."""
        try:
            stat = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        cached = self._files.get(path)
        if cached is not None and cached.signature == (stat.st_ino, stat.st_mtime_ns, stat.st_size):
            return cached
        now = time.time_ns()
        try:
            # Read the bytes and their signature from one open file: a replacement between the
            # stat above and this read cannot pair old bytes with a new signature.
            with open(path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            frame = pl.read_parquet(io.BytesIO(data))
        except Exception as exc:  # a corrupt file is the pipeline's problem: say which one
            raise LakeDataError(
                f"{asset}[{key}] cannot be read ({type(exc).__name__}); re-materialize it.",
                asset=asset,
            ) from exc
        missing = missing_required(asset, frame)
        if missing:
            raise LakeDataError(
                f"{asset}[{key}] does not match the lake contract: missing columns {missing}.",
                asset=asset,
            )
        frame = with_optional_columns(asset, frame)  # an older lake's table: new columns null
        signature: tuple[int, ...] = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if now - stat.st_mtime_ns <= RACY_WINDOW_NS:
            # Written moments ago: a rewrite within the same clock tick could reuse this inode,
            # mtime and size. A unique signature makes it (and all derived from it) uncacheable
            # until it settles.
            signature += (next(self._unsettled),)
        partition = Partition(asset, ticker, key, signature, frame)
        with self._lock:
            self._files[path] = partition
            while len(self._files) > self._max_files:
                self._files.popitem(last=False)
        return partition

    def list_keys(self, folder: str) -> tuple[str, ...]:
        """Sorted stems of the `.parquet` files in `folder` (empty when it does not exist)."""
        now = time.time_ns()
        try:
            stat = os.stat(folder)
        except (FileNotFoundError, NotADirectoryError):
            return ()
        signature = (stat.st_ino, stat.st_mtime_ns)
        cached = self._listings.get(folder)
        if cached is not None and cached.trusted and cached.signature == signature:
            return cached.keys
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return ()
        keys = tuple(
            sorted(n[: -len(PARQUET)] for n in names if n.endswith(PARQUET) and n[0] != ".")
        )
        trusted = now - stat.st_mtime_ns > RACY_WINDOW_NS
        self._listings[folder] = _Listing(signature, keys, trusted)
        return keys

    def _valid_keys(self, folder: str, valid: Callable[[str], bool]) -> tuple[str, ...]:
        """list_keys without stray files, recomputed only when the listing changes."""
        keys = self.list_keys(folder)
        cached = self._filtered.get(folder)
        if cached is not None and cached[0] is keys:
            return cached[1]
        kept = tuple(k for k in keys if valid(k))
        self._filtered[folder] = (keys, kept)
        return kept

    def derive(self, key: Hashable, build: Callable[[], T]) -> T:
        """A value computed from partitions, cached under a key that includes their identities."""
        try:
            return self._derived[key]  # type: ignore[return-value]
        except KeyError:
            pass
        value = build()
        with self._lock:
            self._derived[key] = value
            while len(self._derived) > self._max_derived:
                self._derived.popitem(last=False)
        return value

    def answer(self, key: Hashable, build: Callable[[], bytes]) -> bytes:
        """A response body, rebuilt from the lake at most every `revalidate_seconds`.

        Under load this turns the per-request `stat` calls into one check per interval; a new
        partition is served at most that long after Dagster wrote it. Errors are never cached,
        so data that appears after a 404 is served on the next request.
        """
        now = time.monotonic_ns()
        hit = self._answers.get(key)
        if hit is not None and now - hit[0] < self.revalidate_ns:
            return hit[1]
        body = build()
        if self.revalidate_ns:
            with self._lock:
                self._answers[key] = (now, body)
                while len(self._answers) > self._max_derived:
                    self._answers.popitem(last=False)
        return body

    # -- tickers and prices --------------------------------------------------------------------

    def tickers(self) -> tuple[str, ...]:
        """Stock tickers with prices in the lake (the market index is not one of them)."""
        return self._valid_keys(lake_folder(self._base, RAW_PRICES), is_ticker_key)

    def _prices_location(self, ticker: str) -> tuple[str, str]:
        if ticker == MARKET_INDEX_KEY:
            return MARKET_INDEX_PRICES, lake_file(self._base, MARKET_INDEX_PRICES)
        return RAW_PRICES, lake_file(self._base, RAW_PRICES, ticker)

    def unknown_ticker(self, ticker: str) -> UnknownTickerError:
        known = self.tickers()
        listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") if known else "none"
        return UnknownTickerError(
            f"Unknown ticker {ticker!r}: the lake has no prices for it (tickers with data: "
            f"{listed}). Add it to watchlist.yaml and materialize raw_prices for it.",
            ticker=ticker,
        )

    def prices(self, ticker: str) -> Partition:
        """The ticker's stored daily prices (`market_index_prices` for GSPC)."""
        ticker = validate_ticker(ticker)
        asset, path = self._prices_location(ticker)
        partition = self.read(asset, path, ticker, ticker)
        if partition is None or partition.is_empty:
            raise self.unknown_ticker(ticker)
        return partition

    def is_known(self, ticker: str) -> bool:
        return os.path.exists(self._prices_location(validate_ticker(ticker))[1])

    def _missing(self, asset: str, ticker: str) -> LakeLookupError:
        if not self.is_known(ticker):
            return self.unknown_ticker(ticker)
        return NotMaterializedError(
            f"No {asset} for {ticker} yet: {materialize_hint(asset, ticker)}.",
            ticker=ticker,
            asset=asset,
        )

    # -- ticker-partitioned tables (model cards) ----------------------------------------------

    def ticker_table(self, asset: str, ticker: str) -> Partition:
        """`<asset>/<TICKER>.parquet`; the parent model's card for GSPC."""
        ticker = validate_ticker(ticker)
        if asset == CHILD_MODEL and ticker == MARKET_INDEX_KEY:
            asset, path = PARENT_MODEL, lake_file(self._base, PARENT_MODEL)
        else:
            path = lake_file(self._base, asset, ticker)
        partition = self.read(asset, path, ticker, ticker)
        if partition is None or partition.is_empty:
            raise self._missing(asset, ticker)
        return partition

    def ticker_table_or_none(self, asset: str, ticker: str) -> Partition | None:
        try:
            return self.ticker_table(asset, ticker)
        except LakeLookupError:
            return None

    # -- date x ticker tables ------------------------------------------------------------------

    def dates(self, asset: str, ticker: str) -> tuple[str, ...]:
        """Materialized date partitions of one ticker, oldest first (holidays included)."""
        return self._valid_keys(lake_folder(self._base, asset, validate_ticker(ticker)), is_date_key)

    def _dated(self, asset: str, ticker: str, key: str) -> Partition | None:
        return self.read(asset, lake_file(self._base, asset, ticker, key), ticker, key)

    def latest(self, asset: str, ticker: str, on_or_before: date | None = None) -> Partition:
        """The newest non-empty partition (on or before a date): empty ones are market holidays."""
        ticker = validate_ticker(ticker)
        keys = self.dates(asset, ticker)
        end = len(keys) if on_or_before is None else bisect_right(keys, on_or_before.isoformat())
        for index in range(end - 1, -1, -1):
            partition = self._dated(asset, ticker, keys[index])
            if partition is not None and partition.frame.height:
                return partition
        if on_or_before is not None:
            first = next(
                (p for k in keys if (p := self._dated(asset, ticker, k)) and not p.is_empty), None
            )
            if first is not None:
                raise NotMaterializedError(
                    f"No {asset} for {ticker} on or before {on_or_before.isoformat()}: the first "
                    f"is {first.key}.",
                    ticker=ticker,
                    asset=asset,
                )
        raise self._missing(asset, ticker)

    def latest_or_none(self, asset: str, ticker: str) -> Partition | None:
        try:
            return self.latest(asset, ticker)
        except LakeLookupError:
            return None

    def between(
        self, asset: str, ticker: str, start: date, end: date | None = None
    ) -> list[Partition]:
        """Non-empty partitions dated start..end (inclusive), oldest first."""
        ticker = validate_ticker(ticker)
        keys = self.dates(asset, ticker)
        first = bisect_left(keys, start.isoformat())
        last = len(keys) if end is None else bisect_right(keys, end.isoformat())
        found = []
        for key in keys[first:last]:
            partition = self._dated(asset, ticker, key)
            if partition is not None and not partition.is_empty:
                found.append(partition)
        return found

    def recent(self, asset: str, ticker: str, count: int) -> list[Partition]:
        """The last `count` non-empty partitions, oldest first."""
        ticker = validate_ticker(ticker)
        found: list[Partition] = []
        for key in reversed(self.dates(asset, ticker)):
            partition = self._dated(asset, ticker, key)
            if partition is not None and not partition.is_empty:
                found.append(partition)
                if len(found) == count:
                    break
        return found[::-1]

    def newest_file_mtime(self, asset: str, tickers: Iterable[str]) -> float | None:
        """Seconds since the epoch of the newest partition file (for the data-age metric)."""
        newest: int | None = None
        for ticker in tickers:
            keys = self.dates(asset, ticker)
            if not keys:
                continue
            try:
                mtime = os.stat(lake_file(self._base, asset, ticker, keys[-1])).st_mtime_ns
            except FileNotFoundError:
                continue
            newest = mtime if newest is None else max(newest, mtime)
        return None if newest is None else newest / 1e9

