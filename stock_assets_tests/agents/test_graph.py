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


@pytest.mark.parametrize(
    ("final", "performance", "drift", "stance", "allowed_confidence"),
    [
        (
            2.0,
            {
                "rolling_mape_pct": 1.84,
                "naive_mape_pct": 2.10,
                "directional_accuracy": 0.58,
                "n_matured": 40,
            },
            None,
            "BULLISH",
            {"High", "Medium"},
        ),
        (
            -2.0,
            {
                "rolling_mape_pct": 1.84,
                "naive_mape_pct": 2.10,
                "directional_accuracy": 0.58,
                "n_matured": 40,
            },
            None,
            "BEARISH",
            {"High", "Medium"},
        ),
        (
            0.1,
            {"rolling_mape_pct": 1.84, "naive_mape_pct": 2.10, "n_matured": 40},
            None,
            "NEUTRAL",
            {"Medium"},
        ),
        (
            3.0,
            {"rolling_mape_pct": 1.84, "naive_mape_pct": 2.10, "n_matured": 40},
            {"drift_share": 0.7, "drifted": True},
            "NEUTRAL",
            {"Low"},
        ),
        (-1.0, None, None, "BEARISH", {"Medium", "Low"}),  # unproven: never High
    ],
)
def test_graph_scenarios_follow_the_rules_and_pass_quality(
    make_inputs, deterministic_graph, final, performance, drift, stance, allowed_confidence
) -> None:
    llm, graph = deterministic_graph
    inputs = make_inputs(final_return_pct=final, performance=performance, drift=drift)
    result = write_report(inputs, llm, graph=graph)
    assert result.verdict.stance == stance
    assert result.verdict.confidence in allowed_confidence
    assert result.critic_approved and result.critic_rounds == 0
    quality = check_report_quality(
        result.markdown, result.verdict, inputs, result.critic_approved, result.author
    )
    assert quality.passed, quality.failures


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
