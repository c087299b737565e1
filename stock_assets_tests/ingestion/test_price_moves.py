"""Price moves adj_close does not explain, and corrections from re-read days, on crafted frames
and on the shared CSVs (where no rule may fire)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from stock_assets.ingestion.corrections import (
    corrections_summary,
    price_corrections,
    refetch_start,
)
from stock_assets.ingestion.quality import (
    check_price_jumps,
    check_split_jumps,
    unexplained_moves,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "prices"


def _walk(n: int = 60, vol: float = 0.01) -> pl.DataFrame:
    """A deterministic zig-zag of daily log moves of 1-2 x `vol` (robust sigma 0.0297 at 1 %),
    adj_close equal to close."""
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(n)]
    closes = [100.0 * math.exp(vol * (1 if i % 3 else -1) * (i % 2 + 0.5)) for i in range(n)]
    return pl.DataFrame({"date": days, "close": closes, "adj_close": closes})


def _scale(frame: pl.DataFrame, rows: range, column: str, factor: float) -> pl.DataFrame:
    index = pl.int_range(pl.len())
    return frame.with_columns(
        pl.when(index.is_in(list(rows))).then(pl.col(column) * factor).otherwise(pl.col(column))
    )


def test_a_move_adj_close_shares_is_no_jump() -> None:
    frame = _scale(_scale(_walk(), range(40, 60), "close", 0.7), range(40, 60), "adj_close", 0.7)
    assert unexplained_moves(frame).is_empty()  # a real 30 % crash: both series fell
    assert check_price_jumps(frame).passed and check_split_jumps(frame).passed


def test_one_bad_close_flags_its_day_and_the_day_after() -> None:
    frame = _scale(_walk(), range(40, 41), "close", 1.6)
    moves = unexplained_moves(frame)
    assert moves["date"].to_list() == [date(2024, 2, 10), date(2024, 2, 11)]
    assert moves["split_like"].to_list() == [None, None]
    result = check_price_jumps(frame)
    assert not result.passed and result.metadata["n_jumps"] == 2
    assert result.metadata["jump_dates"] == "2024-02-10, 2024-02-11"
    assert check_split_jumps(frame).passed
    # The multiple is the threshold: log(1.6) = 0.47 is ~16 robust sigmas of these moves.
    assert not check_price_jumps(frame, jump_multiple=15.0).passed
    assert check_price_jumps(frame, jump_multiple=17.0).passed


@pytest.mark.parametrize(("factor", "label"), [(0.5, "2:1"), (1 / 3, "3:1"), (10.0, "1:10")])
def test_an_unadjusted_split_is_split_like(factor: float, label: str) -> None:
    frame = _scale(_walk(), range(30, 60), "close", factor)
    moves = unexplained_moves(frame)
    assert moves["date"].to_list() == [date(2024, 1, 31)]
    assert moves["split_like"].to_list() == [label]
    result = check_split_jumps(frame)
    assert not result.passed and result.metadata["split_dates"] == "2024-01-31"
    assert f"(a {label} split?)" in result.description


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared price CSVs not found")
def test_no_rule_fires_on_the_shared_csvs() -> None:
    # MSFT's 2004 special dividend is the largest unexplained move: 7.5 sigmas, under 10.
    for path in sorted(SHARED.glob("*.csv")):
        frame = pl.read_csv(path, try_parse_dates=True)
        assert check_price_jumps(frame).passed, (path.name, check_price_jumps(frame).description)
        assert check_split_jumps(frame).passed, path.name
    msft = pl.read_csv(SHARED / "MSFT.csv", try_parse_dates=True)
    assert unexplained_moves(msft, jump_multiple=7.0)["date"].to_list() == [date(2004, 11, 15)]


def _bars(days: list[int], close: float, volume: int = 100) -> pl.DataFrame:
    return pl.DataFrame(
        {"date": [date(2024, 3, d) for d in days], "close": [close] * len(days),
         "adj_close": [close] * len(days), "volume": [volume] * len(days)}
    )  # fmt: skip


def test_refetch_start_is_the_first_of_the_last_n_stored_days() -> None:
    stored = _bars([4, 5, 6, 7, 8], 10.0)
    assert refetch_start(stored, 3) == date(2024, 3, 6)
    assert refetch_start(stored, 50) == date(2024, 3, 4)
    assert refetch_start(stored, 0) is None and refetch_start(None, 3) is None


def test_price_corrections_list_each_changed_value_of_the_overlap() -> None:
    stored = _bars([4, 5, 6], 10.0)
    fetched = pl.concat(
        [_bars([5], 10.0), _bars([6], 10.5, volume=120), _bars([7], 11.0)]  # 7: new, not a fix
    )
    corrections = price_corrections(stored, fetched)
    assert corrections.rows() == [
        (date(2024, 3, 6), "adj_close", 10.0, 10.5),
        (date(2024, 3, 6), "close", 10.0, 10.5),
        (date(2024, 3, 6), "volume", 100.0, 120.0),
    ]
    assert corrections_summary(corrections).startswith(
        "1 stored days corrected (3 values): 2024-03-06 adj_close 10 -> 10.5"
    )
    noise = _bars([6], 10.0 * (1 + 1e-12))
    assert price_corrections(stored, noise).is_empty()
    assert corrections_summary(price_corrections(stored, noise)) == "no stored day changed"
