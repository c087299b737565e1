"""The Parquet lake: one file per asset partition, written atomically, read by anyone.

Why not one DuckDB file: DuckDB allows a single writer process, so ten ticker partitions
materialized at once would fail on its lock. One Parquet file per partition has no shared lock, and
`write -> fsync -> os.replace` means a reader (or a run killed mid-write) never sees half a file:
the previous good partition stays until the new one is complete. DuckDB still reads the lake
(`LakeResource.query`) and so does the API in serving/.

Layout: `stock_assets.contract.paths` defines it (the contract with serving/), one file per
partition, and per (ticker, date) for a date-partitioned asset:
    unpartitioned   <base>/<asset>.parquet
    ticker          <base>/<asset>/<TICKER>.parquet
    date (a panel)  <base>/<asset>/<TICKER>/<YYYY-MM-DD>.parquet, one file per ticker of the date

A date-partitioned (panel) asset returns `PanelFrames`, {(date, ticker): frame}: the IO manager
writes exactly those files, so a run for one ticker rewrites no other ticker's file.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import dagster as dg
import polars as pl

# partition_path is the contract's (re-exported here for the lake's users).
from stock_assets.contract import partition_path, validate_ticker


class LakeReadError(FileNotFoundError):
    """A partition someone needs has not been materialized (or its file is unreadable)."""


def atomic_write_bytes(payload: bytes, path: Path) -> None:
    """Write `payload` to `path` so that readers see the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The writer's pid in the name: a temp file left by a killed writer is known to be torn
    # (recovery.sweep_torn_files removes it).
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk says "No space left on device", not which file
        message = f"cannot write {path}: {exc.strerror or exc}"
        raise (OSError(exc.errno, message) if exc.errno else OSError(message)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """A Parquet file written with atomic_write_bytes' guarantee."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    atomic_write_bytes(buffer.getvalue(), path)


def read_parquet(path: Path, what: str) -> pl.DataFrame:
    if not path.exists():
        raise LakeReadError(f"{what} has not been materialized yet (no {path}).")
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # a corrupt file must say where it is, not just "bad magic bytes"
        raise LakeReadError(f"{what}: cannot read {path}: {exc}") from exc


class PanelFrames(dict):
    """A panel asset's output: {(YYYY-MM-DD, TICKER): frame}, one lake file each.

    The dates must be partitions of the run; the tickers are the ones the run computed (its
    `stock_assets/tickers` selection), so files of other tickers are never rewritten.
    """

    def tickers(self) -> list[str]:
        return sorted({ticker for _, ticker in self})

    def dates(self) -> list[str]:
        return sorted({day for day, _ in self})

    def rows(self) -> int:
        return sum(frame.height for frame in self.values())


def _is_date_partitioned(context: dg.OutputContext | dg.InputContext) -> bool:
    return context.has_asset_partitions and isinstance(
        context.asset_partitions_def, dg.TimeWindowPartitionsDefinition
    )


def _date_column_range(frame: pl.DataFrame) -> dict[str, dg.MetadataValue]:
    for column in ("date", "as_of_date"):
        if column in frame.columns and frame.height:
            return {
                "first_date": dg.MetadataValue.text(str(frame[column].min())),
                "last_date": dg.MetadataValue.text(str(frame[column].max())),
            }
    return {}


class ParquetLakeIOManager(dg.ConfigurableIOManager):
    """Stores Polars DataFrames as lake partitions; loads one partition, or several concatenated."""

    base_dir: str

    @property
    def _base(self) -> Path:
        return Path(self.base_dir)

    def _asset_name(self, asset_key: dg.AssetKey) -> str:
        return asset_key.path[-1]

    def _paths(self, context: dg.OutputContext | dg.InputContext) -> list[tuple[str, Path]]:
        asset = self._asset_name(context.asset_key)
        if not context.has_asset_partitions:
            return [(asset, partition_path(self._base, asset))]
        keys: Iterable[str] = (
            context.asset_partition_keys
            if isinstance(context, dg.InputContext)
            else [context.asset_partition_key]
        )
        if _is_date_partitioned(context):  # a panel: every ticker's file of each date
            folder = self._base / asset
            tickers = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
            return [
                (f"{asset}[{key}][{ticker}]", partition_path(self._base, asset, ticker, str(key)))
                for key in keys
                for ticker in tickers
                if partition_path(self._base, asset, ticker, str(key)).exists()
            ]
        return [(f"{asset}[{key}]", partition_path(self._base, asset, str(key))) for key in keys]

    def handle_output(
        self, context: dg.OutputContext, obj: pl.DataFrame | Mapping[str, pl.DataFrame] | None
    ) -> None:
        if obj is None:
            return
        if isinstance(obj, PanelFrames):
            self._write_panel(context, obj)
            return
        if isinstance(obj, Mapping):
            self._write_partitions(context, obj)
            return
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned {type(obj).__name__}; "
                "the lake stores Polars DataFrames."
            )
        if _is_date_partitioned(context):
            raise TypeError(
                f"{context.asset_key.to_user_string()} is a panel: return PanelFrames "
                "{(date, ticker): frame}."
            )
        [(_, path)] = self._paths(context)
        atomic_write_parquet(obj, path)
        context.add_output_metadata(
            {
                "dagster/row_count": obj.height,
                "path": dg.MetadataValue.path(str(path)),
                "columns": dg.MetadataValue.text(", ".join(obj.columns)),
                **_date_column_range(obj),
            }
        )

    def _write_panel(self, context: dg.OutputContext, frames: PanelFrames) -> None:
        """One file per (ticker, date) the run computed; dates outside the run are an error."""
        if not _is_date_partitioned(context):
            raise TypeError(f"{context.asset_key.to_user_string()} is not date-partitioned.")
        expected = {str(key) for key in context.asset_partition_keys}
        stray = sorted(set(frames.dates()) - expected)
        if stray:
            raise ValueError(
                f"{context.asset_key.to_user_string()} returned dates {stray[:5]} outside the "
                f"run's partitions {sorted(expected)[:3]}..."
            )
        asset = self._asset_name(context.asset_key)
        for (day, ticker), frame in frames.items():
            if not isinstance(frame, pl.DataFrame):
                raise TypeError(f"{asset}[{day}][{ticker}] is {type(frame).__name__}.")
            atomic_write_parquet(frame, partition_path(self._base, asset, ticker, day))
        context.add_output_metadata(
            {
                "dagster/row_count": frames.rows(),
                "files_written": len(frames),
                "tickers_written": len(frames.tickers()),
                "rows_written_by_run": frames.rows(),
                "lake_folder": dg.MetadataValue.path(str(self._base / asset)),
            }
        )

    def _write_partitions(self, context: dg.OutputContext, frames: Mapping[str, pl.DataFrame]) -> None:
        """A single-run backfill's output: `{partition_key: frame}`, one file per partition.

        The keys must be among the run's partitions, so a range run writes the same files as one
        run per partition would, and never a partition it was not asked for; a partition the
        asset left out (e.g. a ticker whose prices failed a blocking rule) keeps its old file.
        """
        if not context.has_asset_partitions:
            raise TypeError(f"{context.asset_key.to_user_string()} is not partitioned: return a DataFrame.")
        expected = {str(key) for key in context.asset_partition_keys}
        given = {str(key) for key in frames}
        if not given <= expected:
            raise ValueError(
                f"{context.asset_key.to_user_string()} returned partitions {sorted(given)[:5]}..., "
                f"the run targets {sorted(expected)[:5]}... ({len(given)} vs {len(expected)})."
            )
        asset = self._asset_name(context.asset_key)
        rows = 0
        for key, frame in frames.items():
            if not isinstance(frame, pl.DataFrame):
                raise TypeError(f"{asset}[{key}] is {type(frame).__name__}; the lake stores Polars DataFrames.")
            atomic_write_parquet(frame, partition_path(self._base, asset, str(key)))
            rows += frame.height
        context.add_output_metadata(
            {"partitions_written": len(frames), "rows_written_by_run": rows}
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        frames = [read_parquet(path, what) for what, path in self._paths(context)]
        if len(frames) == 1:
            return frames[0]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


class LakeResource(dg.ConfigurableResource):
    """The lake for code that reads or writes it outside an asset input or output."""

    base_dir: str

    @property
    def base(self) -> Path:
        return Path(self.base_dir)

    def path(self, asset: str, ticker: str | None = None, date: str | None = None) -> Path:
        return partition_path(self.base, asset, ticker, date)

    def read(self, asset: str, ticker: str | None = None, date: str | None = None) -> pl.DataFrame:
        label = asset + (f"[{ticker}]" if ticker else "") + (f"[{date}]" if date else "")
        return read_parquet(self.path(asset, ticker, date), label)

    def read_if_exists(
        self, asset: str, ticker: str | None = None, date: str | None = None
    ) -> pl.DataFrame | None:
        path = self.path(asset, ticker, date)
        return pl.read_parquet(path) if path.exists() else None

    def last_date(self, asset: str, ticker: str | None = None, column: str = "date"):
        """The newest `column` value of a partition (None if absent or empty), read lazily so
        Parquet's statistics answer it without loading the table."""
        path = self.path(asset, ticker)
        if not path.exists():
            return None
        return pl.scan_parquet(path).select(pl.col(column).max()).collect().item()

    def write(
        self, frame: pl.DataFrame, asset: str, ticker: str | None = None, date: str | None = None
    ) -> Path:
        path = self.path(asset, ticker, date)
        atomic_write_parquet(frame, path)
        return path

    def partitions(self, asset: str, ticker: str | None = None) -> list[str]:
        """Materialized partition keys of an asset (tickers, or dates of one ticker), sorted."""
        folder = self.base / asset / validate_ticker(ticker) if ticker else self.base / asset
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.parquet"))

    def read_many(self, asset: str, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        """All ticker partitions of an asset (or the named ones), concatenated."""
        keys = list(tickers) if tickers is not None else self.partitions(asset)
        frames = [self.read(asset, key) for key in keys]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def query(self, sql: str, params: Sequence[object] | None = None) -> pl.DataFrame:
        """Run read-only DuckDB SQL; `lake('<asset>')` is not magic, pass paths as parameters."""
        import duckdb

        with duckdb.connect(":memory:") as connection:
            return connection.execute(sql, params or []).pl()


class SequenceLakeIOManager(ParquetLakeIOManager):
    """Stores training sequences (`SequenceData`: windows, targets, train-only scalers) as one
    `.npz` per partition beside the Parquet tables, with the same atomic-write guarantee."""

    def _npz_paths(self, context: dg.OutputContext | dg.InputContext) -> list[tuple[str, Path]]:
        return [(what, path.with_suffix(".npz")) for what, path in self._paths(context)]

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        [(_, path)] = self._npz_paths(context)
        atomic_write_bytes(obj.to_npz_bytes(), path)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path))})

    def load_input(self, context: dg.InputContext):
        from stock_assets.datasets.windows import SequenceData

        loaded = []
        for what, path in self._npz_paths(context):
            if not path.exists():
                raise LakeReadError(f"{what} has not been materialized yet (no {path}).")
            loaded.append(SequenceData.from_npz_bytes(path.read_bytes()))
        return loaded[0] if len(loaded) == 1 else loaded
