"""What a source says twice: conflicting duplicate dates, and corrections to stored days.

Why a module of its own: both are decisions about which price is true, made on frames alone.
A source that gives one date two different bars is broken, and keeping "the last one" would
store whichever it happened to send second (a close of 999 on a 250 stock); identical repeats
are harmless and dropped. A source that later revises a stored day (a late print, a corrected
volume) is only seen when the last days are re-read (`refetch_days`); each changed value is
listed so the run's metadata says what the new partition replaced.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl

from stock_assets.ingestion.errors import PriceSourceError
from stock_assets.metadata import markdown_table

VALUE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
MAX_LISTED = 5
RELATIVE_TOLERANCE = 1e-9  # float noise in a re-read is not a correction


def drop_identical_duplicates(frame: pl.DataFrame, origin: str) -> pl.DataFrame:
    """`frame` with repeated identical rows dropped; a date with CONFLICTING rows raises, naming
    the dates and the values that disagree."""
    unique = frame.unique(maintain_order=True)
    counts = unique.group_by("date").len().filter(pl.col("len") > 1)
    if counts.is_empty():
        return unique
    conflicts = unique.join(counts.select("date"), on="date").sort("date", maintain_order=True)
    described = []
    for (day,), rows in conflicts.group_by(["date"], maintain_order=True):
        differing = [c for c in frame.columns if c != "date" and rows[c].n_unique() > 1]
        values = ", ".join(f"{c} {' vs '.join(map(str, rows[c].to_list()))}" for c in differing)
        described.append(f"{day} ({values})")
    listed = "; ".join(described[:MAX_LISTED])
    more = f" and {len(described) - MAX_LISTED} more" if len(described) > MAX_LISTED else ""
    raise PriceSourceError(
        f"{origin}: {len(described)} date{'s' if len(described) > 1 else ''} with conflicting "
        f"rows: {listed}{more}; nothing was "
        "written (fix the source: which bar is true cannot be guessed)."
    )


def refetch_start(stored: pl.DataFrame | None, refetch_days: int) -> date | None:
    """The first of the last `refetch_days` stored dates (None: nothing to re-read)."""
    if refetch_days <= 0 or stored is None or stored.is_empty():
        return None
    return stored["date"].sort().tail(refetch_days)[0]


def price_corrections(stored: pl.DataFrame | None, fetched: pl.DataFrame) -> pl.DataFrame:
    """Each stored value the source now reports differently: `date, column, stored, fetched`.

    Only dates both frames hold count; a value changed by more than float noise is a correction.
    """
    schema = {"date": pl.Date, "column": pl.String, "stored": pl.Float64, "fetched": pl.Float64}
    if stored is None or stored.is_empty() or fetched.is_empty():
        return pl.DataFrame(schema=schema)
    columns = [c for c in VALUE_COLUMNS if c in stored.columns and c in fetched.columns]
    both = stored.select("date", *columns).join(
        fetched.select("date", *columns), on="date", suffix="_fetched"
    )
    changes = []
    for column in columns:
        old, new = pl.col(column).cast(pl.Float64), pl.col(f"{column}_fetched").cast(pl.Float64)
        changed = (old - new).abs() > RELATIVE_TOLERANCE * pl.max_horizontal(old.abs(), new.abs())
        changes.append(
            both.filter(changed.fill_null(old.is_null() != new.is_null())).select(
                "date", pl.lit(column).alias("column"), old.alias("stored"), new.alias("fetched")
            )
        )
    return pl.concat(changes).sort("date", "column") if changes else pl.DataFrame(schema=schema)


def corrections_summary(corrections: pl.DataFrame) -> str:
    """One line for the log and the metadata: how many days changed, and the first few."""
    if corrections.is_empty():
        return "no stored day changed"
    days = corrections["date"].unique().sort()
    listed = "; ".join(
        f"{row['date']} {row['column']} {row['stored']:g} -> {row['fetched']:g}"
        for row in corrections.head(MAX_LISTED).iter_rows(named=True)
    )
    return f"{days.len()} stored days corrected ({corrections.height} values): {listed}"


def correction_metadata(corrections: pl.DataFrame | None) -> dict[str, dg.MetadataValue]:
    """The price asset's metadata about re-read days (nothing when no day was re-read)."""
    if corrections is None:
        return {}
    metadata = {
        "corrected_rows": dg.MetadataValue.int(corrections["date"].n_unique()),
        "corrected_values": dg.MetadataValue.int(corrections.height),
        "corrections_summary": dg.MetadataValue.text(corrections_summary(corrections)),
    }
    if not corrections.is_empty():
        metadata["corrections"] = dg.MetadataValue.md(markdown_table(corrections.head(50)))
    return metadata
