"""The Feast feature store as a Dagster resource: write the offline table, apply, serve history.

Training and inference read indicator history through `history()` (Feast's point-in-time join),
so a model only ever sees feature values that were known at the time it asks about. The online
store (SQLite by default, Redis in production) holds each ticker's latest values: `online()`
serves them to the daily forecast of the latest session, which checks them against the offline
row of the same date.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import warnings
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import dagster as dg
import polars as pl
import yaml

from stock_assets.features.indicators import INDICATOR_COLUMNS
from stock_assets.lake import atomic_write_parquet

FEATURE_VIEW = "price_indicators"
FEATURE_COLUMNS: tuple[str, ...] = ("close", "volume", *INDICATOR_COLUMNS)
MARKET_TIMEZONE = "America/New_York"

# Online and offline rows hold the same float64 values; a difference past these is skew.
SKEW_REL_TOLERANCE = 1e-9
SKEW_ABS_TOLERANCE = 1e-12
_ONLINE_DTYPES = {"volume": pl.Int64}
_STORES: dict[tuple, object] = {}
_STORES_LOCK = threading.Lock()


def close_timestamps(dates: pl.Expr) -> pl.Expr:
    """A trading date's features become known at that day's 16:00 New York close (as UTC)."""
    return (
        (dates.cast(pl.Datetime("us")) + pl.duration(hours=16))
        .dt.replace_time_zone(MARKET_TIMEZONE)
        .dt.convert_time_zone("UTC")
    )


def to_offline_table(indicators: pl.DataFrame, created: datetime | None = None) -> pl.DataFrame:
    """The lake's indicator rows in Feast's layout: entity, event time, created time, features."""
    created = created or datetime.now(UTC)
    return indicators.select(
        pl.col("ticker"),
        close_timestamps(pl.col("date")).alias("event_timestamp"),
        pl.lit(created).cast(pl.Datetime("us", "UTC")).alias("created"),
        *[pl.col(c).cast(pl.Int64 if c == "volume" else pl.Float64) for c in FEATURE_COLUMNS],
    ).sort("ticker", "event_timestamp")


def _expand(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if values.get(name):
            return values[name]
        raise KeyError(f"feature_store yaml needs ${{{name}}}, which is not set.")

    return re.sub(r"\$\{([A-Z0-9_]+)\}", replace, text)


class FeatureStoreResource(dg.ConfigurableResource):
    """Feast over `feature_repo/`, with its state under the project home."""

    repo_path: str
    home: str
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str | None = None  # the redis store's ${FEAST_REDIS_URL}, e.g. redis:6379

    @property
    def offline_table(self) -> Path:
        return Path(self.home) / "feast" / "price_indicators.parquet"

    def _yaml_file(self) -> Path:
        name = "feature_store.redis.yaml" if self.online_store == "redis" else "feature_store.yaml"
        return Path(self.repo_path) / name

    def store(self):
        """The FeatureStore, built once per process and config (construction costs seconds)."""
        key = (self.repo_path, self.home, self.online_store, self.redis_url)
        with _STORES_LOCK:
            if key not in _STORES:
                from feast import FeatureStore, RepoConfig

                (Path(self.home) / "feast").mkdir(parents=True, exist_ok=True)
                raw = yaml.safe_load(
                    _expand(
                        self._yaml_file().read_text(),
                        {"STOCK_ASSETS_HOME": self.home, "FEAST_REDIS_URL": self.redis_url or ""},
                    )
                )
                config = RepoConfig(**raw)
                config.repo_path = Path(self.repo_path)
                _STORES[key] = FeatureStore(repo_path=self.repo_path, config=config)
            return _STORES[key]

    def definitions(self):
        """(entity, feature view) from feature_repo/features.py, pointed at our offline table."""
        path = Path(self.repo_path) / "features.py"
        spec = importlib.util.spec_from_file_location("stock_assets_feature_repo", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.build_feature_definitions(self.offline_table)

    def publish(self, indicators: pl.DataFrame) -> dict[str, object]:
        """Write the offline table, apply the repo, materialize each ticker's latest row online."""
        table = to_offline_table(indicators)
        atomic_write_parquet(table, self.offline_table)
        store = self.store()
        entity, view = self.definitions()
        store.apply([entity, view])
        latest = table.group_by("ticker").agg(pl.col("event_timestamp").max())
        # Only the newest row per ticker matters online: materialize from the oldest "newest".
        start = latest["event_timestamp"].min() - timedelta(seconds=1)
        end = latest["event_timestamp"].max() + timedelta(seconds=1)
        store.materialize(start_date=start, end_date=end, feature_views=[view.name])
        return {
            "rows": table.height, "tickers": latest.height, "start": start, "end": end,
            "online_mismatch": self.online_mismatch(table),
        }

    def online_mismatch(self, table: pl.DataFrame) -> list[str]:
        """The tickers whose online row is not their latest row of the offline `table` (Feast's
        layout): another date, or other values. Read back in ONE online call after publishing,
        because Redis keeps a row whose event time is not newer (a vendor's correction of the
        latest day would stay unserved) and inference refuses a ticker whose rows disagree."""
        newest = table.sort("event_timestamp").group_by("ticker").last().with_columns(
            date=pl.col("event_timestamp").dt.convert_time_zone(MARKET_TIMEZONE).dt.date()
        )
        online = self.online(newest["ticker"].to_list())
        joined = newest.join(online, on="ticker", how="left", suffix="_online")

        def same(column: str) -> pl.Expr:  # equal, or within float tolerance, nulls alike
            a, b = pl.col(column).cast(pl.Float64), pl.col(f"{column}_online").cast(pl.Float64)
            tolerance = SKEW_REL_TOLERANCE * a.abs() + SKEW_ABS_TOLERANCE
            return (a.eq_missing(b) | ((a - b).abs() <= tolerance)).fill_null(False)

        dates = pl.col("date").eq_missing(pl.col("date_online"))
        agree = pl.all_horizontal(dates, *[same(c) for c in FEATURE_COLUMNS])
        return sorted(joined.filter(~agree)["ticker"].to_list())

    def history(
        self, ticker: str, dates: Sequence[date], columns: Sequence[str] = FEATURE_COLUMNS
    ) -> pl.DataFrame:
        """Point-in-time feature rows of one ticker as known at each date's close.

        A date whose features were not yet known (or older than the view's TTL) comes back with
        nulls: callers drop or reject those, they are never filled from the future.
        """
        return self.history_many({ticker: dates}, columns)[ticker]

    def history_many(
        self, dates_by_ticker: dict[str, Sequence[date]], columns: Sequence[str] = FEATURE_COLUMNS
    ) -> dict[str, pl.DataFrame]:
        """`history` of many tickers in ONE point-in-time retrieval (the daily panel's way: one
        Feast call for the universe, not one per ticker)."""
        import pandas as pd

        requested = pl.concat(
            [
                pl.DataFrame({"ticker": ticker, "date": pl.Series(list(days), dtype=pl.Date)})
                for ticker, days in dates_by_ticker.items()
            ],
            how="vertical",
        ) if dates_by_ticker else pl.DataFrame(schema={"ticker": pl.String, "date": pl.Date})
        entity_df = pd.DataFrame(
            {
                "ticker": requested["ticker"].to_pandas(),
                "event_timestamp": requested.select(close_timestamps(pl.col("date")))
                .to_series()
                .to_pandas(),
            }
        )
        with warnings.catch_warnings():
            # Feast's DuckDB store goes through ibis, which calls a DuckDB method DuckDB has
            # deprecated (fetch_arrow_table); not ours to fix, and it would print on every run.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="ibis")
            frame = (
                self.store()
                .get_historical_features(
                    entity_df=entity_df,
                    features=[f"{FEATURE_VIEW}:{c}" for c in columns],
                )
                .to_df()
            )
        found = (
            pl.from_pandas(frame)
            .with_columns(
                pl.col("event_timestamp")
                .dt.convert_time_zone(MARKET_TIMEZONE)
                .dt.date()
                .alias("date")
            )
            .select("ticker", "date", *columns)
            .unique(["ticker", "date"], keep="first")
        )
        # Feast's file store drops entity rows it has no value for; put them back as nulls.
        joined = requested.join(found, on=["ticker", "date"], how="left")
        return {
            ticker: joined.filter(pl.col("ticker") == ticker)
            .select("date", "ticker", *columns)
            .sort("date")
            for ticker in dates_by_ticker
        }

    def online(
        self, tickers: Sequence[str], columns: Sequence[str] = FEATURE_COLUMNS
    ) -> pl.DataFrame:
        """Each ticker's latest feature values from the online store, in ONE call for all tickers,
        with the trading `date` the row is for (null where the store holds none): what inference
        is served, so that it can be compared with the offline store's row of the same date."""
        response = self.store().get_online_features(
            features=[f"{FEATURE_VIEW}:{c}" for c in columns],
            entity_rows=[{"ticker": t} for t in tickers],
        )
        values = response.to_dict(include_event_timestamps=True)
        # Feast stamps each feature with its row's event time in epoch seconds (0: no row).
        stamps = pl.DataFrame(
            {c: values[f"{c}__ts"] for c in columns}, schema={c: pl.Int64 for c in columns}
        )
        dates = (
            pl.from_epoch(stamps.select(pl.max_horizontal(columns)).to_series(), time_unit="s")
            .dt.replace_time_zone("UTC")
            .dt.convert_time_zone(MARKET_TIMEZONE)
            .dt.date()
        )
        known = stamps.select(pl.max_horizontal(columns) > 0).to_series()
        frame = pl.DataFrame(
            {"ticker": values["ticker"], **{c: values[c] for c in columns}},
            schema={"ticker": pl.String, **{c: _ONLINE_DTYPES.get(c, pl.Float64) for c in columns}},
        )
        return frame.with_columns(date=pl.when(known).then(dates)).select(
            "ticker", "date", *columns
        )
