"""Ticker validation: what becomes a partition key, a file name or a path is checked first."""

from __future__ import annotations

from pathlib import Path

import pytest

from stock_assets.tickers import (
    InvalidTickerError,
    csv_file_name,
    load_watchlist,
    to_symbol,
    validate_ticker,
)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("AAPL", "AAPL"),
        ("BRK-B", "BRK-B"),
        ("BRK.B", "BRK.B"),
        ("GOOGL", "GOOGL"),
        ("^GSPC", "GSPC"),
        ("GSPC", "GSPC"),
        ("X", "X"),
    ],
)
def test_valid_tickers_become_partition_keys(raw: str, key: str) -> None:
    assert validate_ticker(raw) == key


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("../etc", "Invalid ticker '../etc'"),
        ("..", "Invalid ticker '..'"),
        ("AAPL/../../etc", "Invalid ticker"),
        ("", "non-empty string"),
        ("   ", "non-empty string"),
        (None, "non-empty string"),
        (42, "non-empty string"),
        (" AAPL", "surrounding whitespace"),
        ("AAPL\n", "surrounding whitespace"),
        ("AAPL;DROP", "Invalid ticker 'AAPL;DROP'"),
        ("AAPL|2024-01-02", "Invalid ticker"),
        ("AAPL,MSFT", "Invalid ticker"),
        ("1ABC", "Invalid ticker"),
        ("TOOLONGXX", "Invalid ticker"),
        ("^gspc", "Invalid ticker"),
        ("aapl junk", "Invalid ticker"),
    ],
)
def test_invalid_tickers_are_rejected_with_the_rule(raw: object, message: str) -> None:
    with pytest.raises(InvalidTickerError) as error:
        validate_ticker(raw)
    assert message in str(error.value)


def test_invalid_ticker_message_states_the_rule() -> None:
    with pytest.raises(InvalidTickerError, match="1-7 upper-case letters/digits") as error:
        validate_ticker("AAPL;DROP")
    assert "'BRK-B'" in str(error.value) and "'^GSPC'" in str(error.value)


@pytest.mark.parametrize(("raw", "hint"), [("aapl", "'AAPL'"), ("brk-b", "'BRK-B'")])
def test_lower_case_gets_a_did_you_mean_hint(raw: str, hint: str) -> None:
    with pytest.raises(InvalidTickerError, match=f"Did you mean {hint}"):
        validate_ticker(raw)


def test_no_hint_when_upper_case_would_not_help() -> None:
    with pytest.raises(InvalidTickerError) as error:
        validate_ticker("aapl;drop")
    assert "Did you mean" not in str(error.value)


def test_symbols_and_csv_file_names() -> None:
    assert to_symbol("GSPC") == "^GSPC"
    assert to_symbol("AAPL") == "AAPL"
    assert csv_file_name("GSPC") == "GSPC.csv"
    assert csv_file_name("^GSPC") == "GSPC.csv"
    with pytest.raises(InvalidTickerError):
        csv_file_name("../etc")
    with pytest.raises(InvalidTickerError):
        to_symbol("aapl")


def test_watchlist_dedupes_and_skips_the_index(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.yaml"
    path.write_text("tickers: [AAPL, MSFT, AAPL, ^GSPC, BRK-B]\n")
    assert load_watchlist(path) == ["AAPL", "MSFT", "BRK-B"]


def test_watchlist_missing_or_empty_is_empty(tmp_path: Path) -> None:
    assert load_watchlist(tmp_path / "absent.yaml") == []
    (tmp_path / "empty.yaml").write_text("")
    assert load_watchlist(tmp_path / "empty.yaml") == []


def test_watchlist_with_a_bad_entry_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "watchlist.yaml"
    path.write_text("tickers: [AAPL, ../etc]\n")
    with pytest.raises(InvalidTickerError, match="'../etc'"):
        load_watchlist(path)
    path.write_text("tickers: AAPL\n")
    with pytest.raises(InvalidTickerError, match="must be a list"):
        load_watchlist(path)


def test_the_repo_watchlist_is_valid(repo_root: Path) -> None:
    keys = load_watchlist(repo_root / "watchlist.yaml")
    assert len(keys) >= 1
    assert all(validate_ticker(k) == k for k in keys)
