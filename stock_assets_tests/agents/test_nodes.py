"""Each of the four agents called alone, on crafted states, with the numbers they must produce."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest

from stock_assets.agents.analyst import build_figures, deterministic_narratives, render_report
from stock_assets.agents.llm import DeterministicAnalystLLM
from stock_assets.agents.nodes import (
    critic,
    market_expert,
    performance_analyst,
    report_writer,
    route_after_critic,
)
from stock_assets.agents.state import ForecastPoint, PriceBar, ReportDraft, ReportInputs
from stock_assets.agents.summaries import summarize_market, summarize_performance
from stock_assets.agents.verdict import Verdict

AS_OF = date(2024, 6, 3)


def _inputs_with_prices(
    closes: list[float], volumes: list[float], index: list[float], **fields
) -> ReportInputs:
    days = [AS_OF - timedelta(days=len(closes) - 1 - i) for i in range(len(closes))]
    return ReportInputs(
        ticker="XOM",
        as_of_date=AS_OF,
        forecast=(
            ForecastPoint(
                target_date=AS_OF + timedelta(days=1), horizon=1, predicted_close=closes[-1] * 1.01
            ),
        ),
        last_close=closes[-1],
        model_name="child_lstm_XOM",
        model_version="1",
        prices=tuple(
            PriceBar(date=d, close=c, volume=v)
            for d, c, v in zip(days, closes, volumes, strict=False)
        ),
        index_prices=tuple(PriceBar(date=d, close=c) for d, c in zip(days, index, strict=False)),
        **fields,
    )


# --- performance_analyst ------------------------------------------------------------------------


def test_performance_analyst_reads_forecast_log_and_drift(make_inputs) -> None:
    update = performance_analyst({"inputs": make_inputs(final_return_pct=2.0)})
    perf = update["performance"]
    assert perf.direction == "up"
    assert perf.final_return_pct == pytest.approx(2.0)
    assert perf.step_returns_pct == pytest.approx((0.4, 0.8, 1.2, 1.6, 2.0))
    assert perf.skill_vs_naive_pct == pytest.approx(100 * (1 - 1.84 / 2.10))  # 12.38 %
    assert perf.grade == "good"
    assert update["events"] == ["performance_analyst: direction up, grade good"]


@pytest.mark.parametrize(
    ("performance", "drift", "final", "direction", "grade"),
    [
        (None, None, -1.0, "down", "unproven"),
        (
            {"rolling_mape_pct": 1.5, "naive_mape_pct": 2.0, "n_matured": 9},
            None,
            1.0,
            "up",
            "unproven",
        ),
        (
            {
                "rolling_mape_pct": 2.3,
                "naive_mape_pct": 2.1,
                "directional_accuracy": 0.6,
                "n_matured": 30,
            },
            None,
            1.0,
            "up",
            "weak",
        ),
        (
            {"rolling_mape_pct": 1.5, "naive_mape_pct": 2.1, "n_matured": 30},
            {"drift_share": 0.6, "drifted": True},
            1.0,
            "up",
            "weak",
        ),
        (
            {"rolling_mape_pct": 2.05, "naive_mape_pct": 2.1, "n_matured": 30},
            None,
            1.0,
            "up",
            "fair",
        ),
        (
            {
                "rolling_mape_pct": 1.5,
                "naive_mape_pct": 2.1,
                "directional_accuracy": 0.45,
                "n_matured": 30,
            },
            None,
            1.0,
            "up",
            "fair",
        ),
        (
            {"rolling_mape_pct": 1.5, "naive_mape_pct": 2.1, "n_matured": 30},
            None,
            0.2,
            "flat",
            "good",
        ),
        (
            {"rolling_mape_pct": 1.5, "naive_mape_pct": 2.1, "n_matured": 30},
            None,
            -0.3,
            "down",
            "good",
        ),
    ],
)
def test_performance_grades_and_directions(
    make_inputs, performance, drift, final, direction, grade
) -> None:
    perf = performance_analyst(
        {"inputs": make_inputs(final_return_pct=final, performance=performance, drift=drift)}
    )["performance"]
    assert (perf.direction, perf.grade) == (direction, grade)


# --- market_expert ------------------------------------------------------------------------------


def test_market_expert_computes_returns_relative_strength_and_volume() -> None:
    closes = [100 * 1.001**i for i in range(60)]
    volumes = [1e6] * 55 + [2e6] * 5
    index = [4000.0] * 40 + [4000.0 * 1.0005**i for i in range(1, 21)]
    market = market_expert({"inputs": _inputs_with_prices(closes, volumes, index)})["market"]
    assert market.return_5d_pct == pytest.approx(100 * (1.001**5 - 1))
    assert market.return_20d_pct == pytest.approx(100 * (1.001**20 - 1))
    assert market.index_return_20d_pct == pytest.approx(100 * (1.0005**20 - 1))
    assert market.relative_strength_pp == pytest.approx(100 * (1.001**20 - 1.0005**20))
    assert market.volume_ratio == pytest.approx(2e6 / 1.25e6)  # 1.6x
    assert market.volatility_20d_pct == pytest.approx(0.0, abs=1e-9)
    assert market.above_sma20 is True
    assert market.news == () and market.news_status == "not fetched"


@pytest.mark.parametrize(
    ("early_vol", "late_vol", "regime"),
    [(0.005, 0.03, "elevated"), (0.03, 0.005, "calm"), (0.015, 0.015, "normal")],
)
def test_market_expert_volatility_regime(early_vol: float, late_vol: float, regime: str) -> None:
    rng = random.Random(3)
    closes = [100.0]
    for i in range(59):
        # Alternating signs keep the sample stdev close to the target volatility.
        closes.append(
            closes[-1]
            * math.exp(
                (1 if i % 2 else -1)
                * (early_vol if i < 39 else late_vol)
                * (1 + 0.05 * rng.random())
            )
        )
    market = summarize_market(_inputs_with_prices(closes, [1e6] * 60, [4000.0] * 60))
    assert market.volatility_regime == regime
    expected = 100 * late_vol * math.sqrt(252)
    assert market.volatility_20d_pct == pytest.approx(expected, rel=0.1)


def test_market_expert_short_history_reports_unknowns() -> None:
    market = summarize_market(_inputs_with_prices([10.0, 11.0, 12.0], [1.0] * 3, [1.0] * 3))
    assert (
        market.return_5d_pct is None
        and market.return_20d_pct is None
        and market.relative_strength_pp is None
    )
    assert market.volatility_regime is None and market.volume_ratio is None


def test_market_expert_news_sources(make_inputs) -> None:
    calls: list[str] = []

    def fetcher(ticker: str) -> list[str]:
        calls.append(ticker)
        return ["Exxon raises dividend"]

    def offline(ticker: str) -> list[str]:
        raise OSError("Could not resolve host: finance.yahoo.com")

    fetched = market_expert({"inputs": make_inputs(ticker="XOM")}, news_fetcher=fetcher)["market"]
    assert (
        fetched.news == ("Exxon raises dividend",)
        and fetched.news_status == "fetched"
        and calls == ["XOM"]
    )
    unreachable = market_expert({"inputs": make_inputs()}, news_fetcher=offline)["market"]
    assert unreachable.news == () and unreachable.news_status == "unreachable (OSError)"
    given = market_expert({"inputs": make_inputs(news=("Given headline",))}, news_fetcher=fetcher)[
        "market"
    ]
    assert given.news == ("Given headline",) and calls == [
        "XOM"
    ]  # the fetcher was not called again


# --- report_writer ------------------------------------------------------------------------------


def test_report_writer_with_the_deterministic_analyst(make_inputs) -> None:
    inputs = make_inputs(final_return_pct=-2.0)
    state = {
        "inputs": inputs,
        "performance": summarize_performance(inputs),
        "market": summarize_market(inputs),
    }
    draft = report_writer(state, llm=DeterministicAnalystLLM())["draft"]
    assert draft.author == "deterministic-analyst"
    assert draft.verdict.stance == "BEARISH"
    assert "- **Forecast t+5 (2024-06-10):**" in draft.markdown
    assert "-2.00%" in draft.markdown and "_Written by deterministic-analyst." in draft.markdown


# --- critic -------------------------------------------------------------------------------------


def _state_with_draft(
    inputs: ReportInputs,
    verdict: Verdict,
    author: str = "fake:scripted",
    extra_prose: str = "",
    rounds: int = 0,
) -> dict:
    performance, market = summarize_performance(inputs), summarize_market(inputs)
    narratives = deterministic_narratives(inputs, performance, market)
    narratives["Market context"] += extra_prose
    markdown = render_report(
        inputs, build_figures(inputs, performance, market), narratives, verdict, author, market
    )
    return {
        "inputs": inputs,
        "performance": performance,
        "market": market,
        "draft": ReportDraft(markdown=markdown, verdict=verdict, author=author),
        "critic_rounds": rounds,
    }


def test_critic_approves_a_consistent_draft(make_inputs) -> None:
    state = _state_with_draft(
        make_inputs(final_return_pct=-2.0),
        Verdict(stance="BEARISH", confidence="Medium", rationale="Forecast points down."),
    )
    update = critic(state)
    assert (
        update["critic_approved"] is True
        and update["needs_revision"] is False
        and update["critic_issues"] == []
    )
    assert update["markdown"].endswith("_Critic: approved the first draft._\n")
    assert route_after_critic({**state, **update}) == "__end__"


def test_critic_sends_a_contradicting_verdict_back_once(make_inputs) -> None:
    inputs = make_inputs(final_return_pct=-2.0, performance=None)  # down, and an unproven model
    state = _state_with_draft(
        inputs, Verdict(stance="BULLISH", confidence="High", rationale="Momentum looks strong.")
    )
    update = critic(state)
    assert (
        update["needs_revision"] is True
        and update["critic_rounds"] == 1
        and "markdown" not in update
    )
    assert update["revision_notes"] == [
        "stance BULLISH but the forecast direction is down (-2.00% at t+5)",
        "confidence High but the model's reliability grade is unproven",
        "confidence High but the 80% range is too wide against the move (at most Medium)",
    ]
    assert route_after_critic({**state, **update}) == "report_writer"
    # Second time round the critic stops: the report ships, marked not approved.
    final = critic({**state, "critic_rounds": 1})
    assert (
        final["needs_revision"] is False
        and final["critic_approved"] is False
        and final["critic_rounds"] == 1
    )
    assert "_Critic: NOT approved after 1 revision(s): stance BULLISH" in final["markdown"]


def test_critic_flags_numbers_that_are_not_in_the_data(make_inputs) -> None:
    state = _state_with_draft(
        make_inputs(final_return_pct=2.0),
        Verdict(stance="BULLISH", confidence="Medium", rationale="Forecast points up."),
        extra_prose=" Analysts expect a 12.70% rally.",
    )
    update = critic(state)
    assert update["needs_revision"] is True
    assert len(update["critic_issues"]) == 1
    assert update["critic_issues"][0].startswith("12.70% is not a figure of the data")


def test_critic_does_not_loop_on_the_deterministic_analyst(make_inputs) -> None:
    state = _state_with_draft(
        make_inputs(final_return_pct=2.0),
        Verdict(stance="BEARISH", confidence="Low", rationale="Crafted contradiction."),
        author="deterministic-analyst",
    )
    update = critic(state)
    assert (
        update["needs_revision"] is False and update["critic_approved"] is False
    )  # no pointless rewrite
