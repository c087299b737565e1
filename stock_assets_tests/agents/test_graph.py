"""The whole graph with the deterministic analyst, on real prices and synthetic scenarios."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from stock_assets.agents.graph import build_report_graph, write_report
from stock_assets.agents.llm import DeterministicAnalystLLM
from stock_assets.agents.quality import check_report_quality

PRICES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "prices"


@pytest.fixture(scope="module")
def deterministic_graph():
    llm = DeterministicAnalystLLM()
    return llm, build_report_graph(llm)


def test_graph_on_real_aapl_prices(real_inputs, deterministic_graph) -> None:
    llm, graph = deterministic_graph
    result = write_report(real_inputs, llm, graph=graph)

    # Independent recomputation of two market figures from the CSV (rows up to the as-of date).
    closes = pl.read_csv(PRICES_DIR / "AAPL.csv", try_parse_dates=True).filter(
        pl.col("date") <= date(2023, 6, 30)
    )["close"]
    r20 = 100 * (closes[-1] / closes[-21] - 1)
    r5 = 100 * (closes[-1] / closes[-6] - 1)
    assert f"{closes[-1]:.2f}" == "193.97"
    assert "- **Last close:** 193.97" in result.markdown
    assert f"- **20-day return:** {r20:+.2f}%" in result.markdown
    assert f"- **5-day return:** {r5:+.2f}%" in result.markdown

    assert result.author == "deterministic-analyst" and result.cache_hit is False
    assert result.verdict.stance == "BEARISH"  # the forecast falls 1.50 % and the model beats naive
    assert result.critic_rounds == 0 and result.critic_approved is True
    assert [e.split(":")[0] for e in result.events] == [
        "performance_analyst",
        "market_expert",
        "report_writer",
        "critic",
    ]
    for heading in ("## Forecast", "## Model reliability", "## Market context", "## Verdict"):
        assert result.markdown.count(heading) == 1
    quality = check_report_quality(
        result.markdown, result.verdict, real_inputs, result.critic_approved, result.author
    )
    assert quality.passed, quality.failures
    row = result.to_row(created_at=datetime(2024, 7, 1, tzinfo=UTC))
    assert (row["ticker"], row["as_of_date"], row["stance"], row["author"]) == (
        "AAPL",
        date(2023, 6, 30),
        "BEARISH",
        "deterministic-analyst",
    )


GOOD = {
    "rolling_mape_pct": 1.84,
    "naive_mape_pct": 2.10,
    "directional_accuracy": 0.58,
    "n_matured": 40,
}
FAIR = {"rolling_mape_pct": 1.84, "naive_mape_pct": 2.10, "n_matured": 40}
DRIFTED = {"drift_share": 0.7, "drifted": True}
OLD_LAKE = None  # daily_vol None: a forecast without quantiles or p_up


@pytest.mark.parametrize(
    ("final", "performance", "drift", "daily_vol", "stance", "allowed_confidence"),
    [
        # +-2 % inside a 1.5 %-a-day range: p_up 0.72 / 0.28, the range leans the same way.
        (2.0, GOOD, None, 0.015, "BULLISH", {"Medium"}),
        (-2.0, GOOD, None, 0.015, "BEARISH", {"Medium"}),
        # The same move in a narrow range (0.4 % a day): the band lies wholly above, High.
        (2.0, GOOD, None, 0.004, "BULLISH", {"High", "Medium"}),
        (0.1, FAIR, None, 0.015, "NEUTRAL", {"Medium"}),
        (3.0, FAIR, DRIFTED, 0.015, "NEUTRAL", {"Low"}),
        (-3.0, None, None, 0.015, "BEARISH", {"Medium", "Low"}),  # unproven: never High
        # A -1 % median inside a range of about -5 % to +3 %: no call, however good the model.
        (-1.0, FAIR, None, 0.015, "NEUTRAL", {"Medium"}),
        # The same forecast from an older lake: the point forecast decides, never High.
        (-1.0, FAIR, None, OLD_LAKE, "BEARISH", {"Medium"}),
        (2.0, GOOD, None, OLD_LAKE, "BULLISH", {"Medium"}),
    ],
)
def test_graph_scenarios_follow_the_rules_and_pass_quality(
    make_inputs, deterministic_graph, final, performance, drift, daily_vol, stance,
    allowed_confidence,
) -> None:  # fmt: skip
    llm, graph = deterministic_graph
    inputs = make_inputs(
        final_return_pct=final, performance=performance, drift=drift, daily_vol=daily_vol
    )
    result = write_report(inputs, llm, graph=graph)
    assert result.verdict.stance == stance, result.verdict.rationale
    assert result.verdict.confidence in allowed_confidence
    assert result.critic_approved and result.critic_rounds == 0
    quality = check_report_quality(
        result.markdown, result.verdict, inputs, result.critic_approved, result.author
    )
    assert quality.passed, quality.failures
    if daily_vol is OLD_LAKE:
        assert "- **80% range t+5:** unavailable (the forecast has no quantiles)" in result.markdown
        assert "its 80% range is unavailable" in result.markdown
    else:
        assert "- **80% range t+5:** " in result.markdown
        assert "- **Probability of a rise by t+5:** " in result.markdown


def test_deterministic_reports_pass_quality_across_tickers_and_days(
    make_inputs, deterministic_graph
) -> None:
    llm, graph = deterministic_graph
    stances = set()
    for i, ticker in enumerate(
        ["AAPL", "AMZN", "GOOGL", "JNJ", "JPM", "META", "MSFT", "NVDA", "PG", "TSLA", "UNH", "XOM"]
    ):
        for day, final in (
            (date(2024, 6, 3), (-1) ** i * (0.2 + 0.4 * i)),
            (date(2024, 6, 4), 1.5 - 0.3 * i),
        ):
            inputs = make_inputs(
                ticker=ticker,
                as_of=day,
                final_return_pct=final,
                seed=100 + i,
                stock_drift=0.002 * (-1) ** i,
            )
            result = write_report(inputs, llm, graph=graph)
            stances.add(result.verdict.stance)
            quality = check_report_quality(
                result.markdown, result.verdict, inputs, result.critic_approved, result.author
            )
            assert quality.passed, (ticker, day, quality.failures)
    assert stances == {"BULLISH", "BEARISH", "NEUTRAL"}
