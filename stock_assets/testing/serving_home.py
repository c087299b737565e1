"""A home holding every table the API reads, materialized by the real assets on a small
synthetic market (two tickers, tiny models), the way the daily loop writes it.

`build_serving_home` runs ingestion up to SYNTHETIC_END, parent_model and child_model (the first
ticker twice: v1 promoted, v2 rejected against it), a single-run back-test of daily_forecast +
forecast_performance over the last FORECAST_SESSIONS sessions, the daily job for the last session
(so Dagster's forecast_mape check is evaluated there), the holiday after it, and agent_report (the
deterministic analyst: no Ollama) for the first ticker's last two sessions. The serving tests and
benchmarks/bench_serving.py build their lake with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from stock_assets.contract import (
    AGENT_REPORT,
    CHILD_MODEL,
    MODEL_HISTORY,
    RAW_PRICES,
    TRAINING_SEQUENCES,
)

TICKERS = ("AAPL", "MSFT")
SYNTHETIC_START = "2023-01-03"
SYNTHETIC_END = date(2024, 7, 3)  # the session before Independence Day
HOLIDAY = date(2024, 7, 4)  # a weekday partition with the market closed: zero forecast rows
JUNETEENTH = date(2024, 6, 19)  # the same, inside the back-test
FORECAST_SESSIONS = 30  # forecast partitions per ticker (the last N sessions)
REPORT_DATES = (date(2024, 7, 2), SYNTHETIC_END)  # agent reports, AAPL only
REFERENCE_DATE = date(2024, 7, 5)  # "today" for freshness in these tests
# No Ollama or Qdrant server here: agent_report uses the deterministic analyst, embedded Qdrant.
REPORT_ENV_VARS = (
    "OLLAMA_BASE_URL", "OLLAMA_MODEL", "OLLAMA_EMBED_MODEL", "QDRANT_URL", "QDRANT_API_KEY",
)  # fmt: skip


@dataclass(frozen=True)
class MapeVerdict:
    """Dagster's forecast_mape evaluation of one (date, ticker), as the daily job recorded it."""

    partition: str
    passed: bool
    description: str


@contextmanager
def serving_home(root: Path, reopen: bool = False) -> Iterator:
    """loop_home (offline report resources) on `root`; `reopen` continues a home built before."""
    from stock_assets.testing.home import environment, loop_home

    with environment({}, unset=REPORT_ENV_VARS):
        with loop_home(root, SYNTHETIC_START, reopen=reopen) as home:
            yield home


def build_serving_home(
    root: Path, tickers: Sequence[str] = TICKERS
) -> dict[str, MapeVerdict]:
    """Materialize every table the API serves in `root`/home (a benchmark may pass more
    tickers); returns the last session's forecast_mape verdicts by ticker."""
    from stock_assets.contract import FORECAST_MAPE
    from stock_assets.partitions import tickers_tag
    from stock_assets.testing.home import TINY_MODEL

    verdicts = {}
    first = tickers[0]  # AAPL in the tests: two model versions and the agent reports
    with serving_home(root) as home:
        home.ingest(tickers, SYNTHETIC_END)
        home.train(tickers)
        # A second candidate: no better than v1, so the gate keeps v1 in production.
        home.materialize(
            [TRAINING_SEQUENCES, CHILD_MODEL, MODEL_HISTORY], first, ops={CHILD_MODEL: TINY_MODEL}
        )
        for ticker in tickers:
            sessions = home.lake.read(RAW_PRICES, ticker)["date"].tail(FORECAST_SESSIONS)
            home.backtest(ticker, sessions[0], sessions[-2])
            daily = home.daily(SYNTHETIC_END, ticker)
            checks = daily.get_asset_check_evaluations()
            [check] = [e for e in checks if e.check_name == FORECAST_MAPE]
            verdicts[ticker] = MapeVerdict(check.partition, check.passed, check.description or "")
            home.daily(HOLIDAY, ticker)
        for day in REPORT_DATES:
            home.materialize([AGENT_REPORT], day.isoformat(), tags=tickers_tag([first]))
    return verdicts
