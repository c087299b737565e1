"""Data-quality rules for a daily price frame, as pure functions the asset checks wrap.

Prices feed every model, so a broken bar (a high below the close), a NaN, a duplicated or missing
trading day, or a feed that silently stopped updating must be caught before features are built.
Each rule returns a `QualityResult` (never raises on bad data; an empty frame fails every rule) with
counts and the first offending dates in its metadata, ready for Dagster's check metadata.

"Trading day" means a session of the exchange calendar (`exchange_calendars`, XNYS by default),
which already leaves out real closures (holidays, 2001-09-11..14, Hurricane Sandy 2012-10-29/30,
the national days of mourning such as 2007-01-02), so a complete history has no gap against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from stock_assets.market_calendar import last_session_on_or_before, trading_sessions

MAX_LISTED_DATES = 5

PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class QualityResult:
    """Outcome of one rule: passed, a one-line description, and numbers for the UI."""

    passed: bool
    description: str
    metadata: dict[str, float | int | str] = field(default_factory=dict)


# --- rules --------------------------------------------------------------------------------------


def _first_dates(frame: pl.DataFrame) -> str:
    if "date" not in frame.columns or frame.is_empty():
        return ""
    return ", ".join(str(d) for d in frame["date"].head(MAX_LISTED_DATES).to_list())


def _precondition(df: pl.DataFrame, required: tuple[str, ...], rule: str) -> QualityResult | None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        return QualityResult(
            False, f"{rule}: missing columns {missing}.", {"missing_columns": ", ".join(missing)}
        )
    if df.is_empty():
        return QualityResult(False, f"{rule}: the price frame has no rows.", {"n_rows": 0})
    return None


def check_ohlc_consistency(df: pl.DataFrame) -> QualityResult:
    """Each bar is possible: high >= max(open, close), low <= min(open, close), high >= low,
    all prices > 0 and volume >= 0."""
    rule = "OHLC consistency"
    failed = _precondition(df, ("date", *PRICE_COLUMNS, "volume"), rule)
    if failed:
        return failed
    conditions = {
        "high_below_open_or_close": pl.col("high") < pl.max_horizontal("open", "close"),
        "low_above_open_or_close": pl.col("low") > pl.min_horizontal("open", "close"),
        "high_below_low": pl.col("high") < pl.col("low"),
        "non_positive_price": pl.any_horizontal(
            *[
                pl.col(c) <= 0
                for c in PRICE_COLUMNS + (("adj_close",) if "adj_close" in df.columns else ())
            ]
        ),
        "negative_volume": pl.col("volume") < 0,
    }
    flagged = df.sort("date").with_columns(
        **{name: cond.fill_null(False) for name, cond in conditions.items()}
    )
    counts = {name: int(flagged[name].sum()) for name in conditions}
    bad = flagged.filter(pl.any_horizontal(*conditions.keys()))
    metadata: dict[str, float | int | str] = {
        "n_rows": df.height,
        "n_bad_rows": bad.height,
        **counts,
        "first_bad_dates": _first_dates(bad),
    }
    if bad.height:
        broken = ", ".join(f"{name}={n}" for name, n in counts.items() if n)
        return QualityResult(False, f"{rule}: {bad.height} impossible bars ({broken}).", metadata)
    return QualityResult(True, f"{rule}: all {df.height} bars are consistent.", metadata)


def check_finite(
    df: pl.DataFrame, columns: list[str] | tuple[str, ...] | None = None
) -> QualityResult:
    """No null, NaN or infinite value in `columns` (default: every numeric column)."""
    rule = "Finite values"
    if columns is None:
        columns = [name for name, dtype in df.schema.items() if dtype.is_numeric()]
    failed = _precondition(df, tuple(columns), rule)
    if failed:
        return failed
    if not columns:
        return QualityResult(False, f"{rule}: no numeric columns to check.", {"n_rows": df.height})
    per_column: dict[str, dict[str, int]] = {}
    bad_rows = pl.lit(False)
    for name in columns:
        column = pl.col(name)
        if df.schema[name].is_float():
            nan, inf = column.is_nan(), column.is_infinite()
        else:
            nan = inf = pl.lit(False)
        per_column[name] = {
            "null": int(df[name].null_count()),
            "nan": int(df.select(nan.fill_null(False).sum()).item()),
            "inf": int(df.select(inf.fill_null(False).sum()).item()),
        }
        bad_rows = bad_rows | column.is_null() | nan.fill_null(False) | inf.fill_null(False)
    bad = df.filter(bad_rows).sort("date") if "date" in df.columns else df.filter(bad_rows)
    totals = {kind: sum(c[kind] for c in per_column.values()) for kind in ("null", "nan", "inf")}
    bad_columns = [name for name, c in per_column.items() if any(c.values())]
    metadata: dict[str, float | int | str] = {
        "n_rows": df.height,
        "n_bad_rows": bad.height,
        "n_null": totals["null"],
        "n_nan": totals["nan"],
        "n_inf": totals["inf"],
        "bad_columns": ", ".join(bad_columns),
        "first_bad_dates": _first_dates(bad),
    }
    if bad.height:
        return QualityResult(
            False,
            f"{rule}: {bad.height} rows hold null/NaN/inf values "
            f"(columns: {', '.join(bad_columns)}).",
            metadata,
        )
    return QualityResult(
        True, f"{rule}: {len(columns)} columns x {df.height} rows are finite.", metadata
    )


def check_unique_dates(df: pl.DataFrame) -> QualityResult:
    """One row per date and no missing date: a duplicate would double-count a day in a window."""
    rule = "Unique dates"
    failed = _precondition(df, ("date",), rule)
    if failed:
        return failed
    n_null = int(df["date"].null_count())
    duplicated = (
        df.filter(pl.col("date").is_not_null())
        .group_by("date")
        .len()
        .filter(pl.col("len") > 1)
        .sort("date")
    )
    metadata: dict[str, float | int | str] = {
        "n_rows": df.height,
        "n_null_dates": n_null,
        "n_duplicated_dates": duplicated.height,
        "n_extra_rows": int((duplicated["len"] - 1).sum()) if duplicated.height else 0,
        "first_duplicated_dates": _first_dates(duplicated),
    }
    if n_null or duplicated.height:
        return QualityResult(
            False,
            f"{rule}: {duplicated.height} dates appear more than once, {n_null} dates are null.",
            metadata,
        )
    return QualityResult(True, f"{rule}: {df.height} rows, one per date.", metadata)


def check_freshness(
    df: pl.DataFrame, as_of: date, max_lag_sessions: int = 3, calendar: str = "XNYS"
) -> QualityResult:
    """The last row is at most `max_lag_sessions` sessions behind the last session up to `as_of`.

    Rows after `as_of` (a backfill evaluated for an earlier day) count as fresh.
    """
    rule = "Freshness"
    failed = _precondition(df, ("date",), rule)
    if failed:
        return failed
    last_date = df["date"].max()
    if last_date is None:
        return QualityResult(False, f"{rule}: every date is null.", {"n_rows": df.height})
    expected = last_session_on_or_before(as_of, calendar)
    # Sessions after the last row, up to the expected one: 0 when the frame is up to date.
    lag = 0
    if last_date < expected:
        lag = int((trading_sessions(last_date, expected, calendar) > last_date).sum())
    metadata: dict[str, float | int | str] = {
        "last_date": str(last_date),
        "expected_last_session": str(expected),
        "lag_sessions": lag,
        "max_lag_sessions": max_lag_sessions,
        "as_of": str(as_of),
    }
    if lag > max_lag_sessions:
        return QualityResult(
            False,
            f"{rule}: last row {last_date} is {lag} sessions behind {expected} "
            f"(allowed {max_lag_sessions}).",
            metadata,
        )
    return QualityResult(
        True, f"{rule}: last row {last_date} is {lag} sessions behind {expected}.", metadata
    )


def check_gaps(df: pl.DataFrame, calendar: str = "XNYS", max_missing: int = 0) -> QualityResult:
    """Every session between the first and last date has a row, and no row is on a non-session day.

    More than `max_missing` missing sessions, or any row on a weekend/holiday, fails.
    """
    rule = "Trading-day gaps"
    failed = _precondition(df, ("date",), rule)
    if failed:
        return failed
    dates = df.select(pl.col("date").drop_nulls().unique().sort())
    if dates.is_empty():
        return QualityResult(False, f"{rule}: every date is null.", {"n_rows": df.height})
    first, last = dates["date"][0], dates["date"][-1]
    sessions = trading_sessions(first, last, calendar).to_frame()
    missing = sessions.join(dates, on="date", how="anti").sort("date")
    not_sessions = dates.join(sessions, on="date", how="anti").sort("date")
    metadata: dict[str, float | int | str] = {
        "first_date": str(first),
        "last_date": str(last),
        "n_sessions": sessions.height,
        "n_missing": missing.height,
        "max_missing": max_missing,
        "first_missing_dates": _first_dates(missing),
        "n_non_session_dates": not_sessions.height,
        "first_non_session_dates": _first_dates(not_sessions),
    }
    problems = []
    if missing.height > max_missing:
        problems.append(f"{missing.height} {calendar} sessions missing (allowed {max_missing})")
    if not_sessions.height:
        problems.append(f"{not_sessions.height} rows on days that are not {calendar} sessions")
    if problems:
        return QualityResult(False, f"{rule}: {'; '.join(problems)}.", metadata)
    return QualityResult(
        True,
        f"{rule}: {missing.height} of {sessions.height} sessions missing "
        f"between {first} and {last}.",
        metadata,
    )


# --- price moves the adjusted close does not explain --------------------------------------------

# A close move beyond this many robust standard deviations of the recent daily moves, not matched
# by adj_close, is suspicious (a typo, a stale or foreign bar, an unadjusted corporate action).
# The largest such move in the shared CSVs is MSFT's 2004-11-15 special dividend, at 7.5.
DEFAULT_JUMP_MULTIPLE = 10.0
JUMP_WINDOW = 20  # sessions of recent moves the volatility is measured on
MIN_DAILY_VOL = 0.002  # floor of that volatility (0.2 %), so a flat stretch is no hair trigger
SPLIT_RATIOS = tuple(range(2, 11))  # n:1 forward and 1:n reverse splits
SPLIT_TOLERANCE = 0.03  # a ratio within 3 % of n or 1/n is split-like


def unexplained_moves(
    df: pl.DataFrame, jump_multiple: float = DEFAULT_JUMP_MULTIPLE
) -> pl.DataFrame:
    """Days whose close moved beyond `jump_multiple` x recent volatility while adj_close did not
    follow: `date, close_ratio, adj_ratio, unexplained (close ratio / adj ratio), sigma,
    split_like (n or 1/n within SPLIT_TOLERANCE, else null)`, sorted by date.

    The volatility is 1.4826 x the median |log move| of adj_close over the previous JUMP_WINDOW
    sessions (robust: one bad bar does not hide the next), floored at MIN_DAILY_VOL. Both moves
    must be large: the close's, and the part of it adj_close does not share.
    """
    moves = (
        df.select("date", "close", "adj_close")
        .drop_nulls()
        .unique(subset="date", keep="last")
        .sort("date")
        .with_columns(
            r_close=(pl.col("close") / pl.col("close").shift(1)).log(),
            r_adj=(pl.col("adj_close") / pl.col("adj_close").shift(1)).log(),
        )
        .with_columns(
            sigma=pl.max_horizontal(
                1.4826
                * pl.col("r_adj").abs().shift(1).rolling_median(JUMP_WINDOW, min_samples=5),
                pl.lit(MIN_DAILY_VOL),
            ),
            r_unexplained=pl.col("r_close") - pl.col("r_adj"),
        )
    )
    limit = pl.col("sigma").fill_null(MIN_DAILY_VOL) * jump_multiple
    flagged = moves.filter(
        (pl.col("r_close").abs() > limit) & (pl.col("r_unexplained").abs() > limit)
    ).with_columns(
        close_ratio=pl.col("r_close").exp(),
        adj_ratio=pl.col("r_adj").exp(),
        unexplained=pl.col("r_unexplained").exp(),
    )
    return flagged.with_columns(
        split_like=pl.col("unexplained").map_elements(_split_label, return_dtype=pl.String)
    ).select("date", "close_ratio", "adj_ratio", "unexplained", "sigma", "split_like")


def _split_label(ratio: float) -> str | None:
    """'n:1' (close fell to 1/n) or '1:n' (rose n-fold) when `ratio` is that close, else None."""
    for n in SPLIT_RATIOS:
        if abs(ratio * n - 1.0) <= SPLIT_TOLERANCE:
            return f"{n}:1"
        if abs(ratio / n - 1.0) <= SPLIT_TOLERANCE:
            return f"1:{n}"
    return None


def _move_list(moves: pl.DataFrame) -> str:
    return "; ".join(
        f"{row['date']} close x{row['close_ratio']:.3f} vs adj_close x{row['adj_ratio']:.3f}"
        for row in moves.head(MAX_LISTED_DATES).iter_rows(named=True)
    )


def check_price_jumps(
    df: pl.DataFrame, jump_multiple: float = DEFAULT_JUMP_MULTIPLE
) -> QualityResult:
    """No close move beyond `jump_multiple` x recent volatility that adj_close does not share
    (split-like ones are check_split_jumps' to fail; they are listed here too)."""
    rule = "Price jumps"
    failed = _precondition(df, ("date", "close", "adj_close"), rule)
    if failed:
        return failed
    moves = unexplained_moves(df, jump_multiple)
    metadata: dict[str, float | int | str] = {
        "n_rows": df.height,
        "jump_multiple": jump_multiple,
        "n_jumps": moves.height,
        "jump_dates": _first_dates(moves),
        "jumps": _move_list(moves),
    }
    if moves.height:
        return QualityResult(
            False,
            f"{rule}: {moves.height} days moved beyond {jump_multiple:g}x recent volatility "
            f"without adj_close: {_move_list(moves)}.",
            metadata,
        )
    return QualityResult(True, f"{rule}: every large close move is matched by adj_close.", metadata)


def check_split_jumps(
    df: pl.DataFrame, jump_multiple: float = DEFAULT_JUMP_MULTIPLE
) -> QualityResult:
    """No unexplained close ratio of about n or 1/n: an unadjusted split would poison every
    return, scaler and MAPE computed across it."""
    rule = "Split-like jumps"
    failed = _precondition(df, ("date", "close", "adj_close"), rule)
    if failed:
        return failed
    splits = unexplained_moves(df, jump_multiple).filter(pl.col("split_like").is_not_null())
    metadata: dict[str, float | int | str] = {
        "n_rows": df.height,
        "n_split_like": splits.height,
        "split_dates": _first_dates(splits),
    }
    if splits.height:
        listed = "; ".join(
            f"{row['date']} close x{row['close_ratio']:.3f} (a {row['split_like']} split?) while "
            f"adj_close moved x{row['adj_ratio']:.3f}"
            for row in splits.head(MAX_LISTED_DATES).iter_rows(named=True)
        )
        return QualityResult(
            False,
            f"{rule}: {listed}: the close is not split-adjusted; re-fetch the history "
            "(or fix the source) before it feeds returns and models.",
            metadata,
        )
    return QualityResult(True, f"{rule}: no split-like jump in the close.", metadata)
