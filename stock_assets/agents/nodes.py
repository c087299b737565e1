"""The four agents of the report graph, each a plain function of the state that returns its updates.

performance_analyst -> market_expert -> report_writer -> critic (-> report_writer once, if the
verdict contradicts the numbers). Dependencies (the LLM, a news source) are keyword arguments,
bound when the graph is built, so each node can be called alone in a test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

from stock_assets.agents.analyst import DETERMINISTIC_AUTHOR, build_figures
from stock_assets.agents.llm import ReportLLM, write_draft
from stock_assets.agents.quality import (
    range_omissions,
    unsupported_numbers,
    verdict_contradictions,
)
from stock_assets.agents.state import ReportState
from stock_assets.agents.summaries import summarize_market, summarize_performance

logger = logging.getLogger(__name__)

MAX_REVISIONS = 1
NewsFetcher = Callable[[str], Sequence[str]]


def performance_analyst(state: ReportState) -> dict[str, Any]:
    """Reads the forecast, the performance log vs naive and the drift result."""
    performance = summarize_performance(state["inputs"])
    return {
        "performance": performance,
        "events": [
            f"performance_analyst: direction {performance.direction}, grade {performance.grade}"
        ],
    }


def fetch_yfinance_news(ticker: str, limit: int = 5) -> list[str]:
    """Recent headlines from yfinance; raises when Yahoo is unreachable (the caller decides)."""
    import yfinance as yf

    items = yf.Ticker(ticker).get_news(count=limit) or []
    titles: list[str] = []
    for item in items:
        content = item.get("content", item) if isinstance(item, dict) else {}
        title = content.get("title") if isinstance(content, dict) else None
        if title:
            titles.append(" ".join(str(title).split()))
    return titles[:limit]


def market_expert(state: ReportState, news_fetcher: NewsFetcher | None = None) -> dict[str, Any]:
    """Price action, volume, relative strength vs the index, volatility regime, news."""
    inputs = state["inputs"]
    news: Sequence[str] = inputs.news
    status = "from inputs" if news else "not fetched"
    if not news and news_fetcher is not None:
        try:
            news = list(news_fetcher(inputs.ticker))
            status = "fetched" if news else "none found"
        except (
            Exception
        ) as exc:  # any failure of an optional outside source only removes the headlines
            status = f"unreachable ({type(exc).__name__})"
            news = []
            logger.info("news for %s unavailable: %s", inputs.ticker, exc)
    market = summarize_market(inputs, news=news, news_status=status)
    return {
        "market": market,
        "events": [f"market_expert: regime {market.volatility_regime}, news {status}"],
    }


def report_writer(state: ReportState, llm: ReportLLM) -> dict[str, Any]:
    """Writes the markdown report and the structured verdict (LLM, or templates on fallback)."""
    draft = write_draft(
        llm, state["inputs"], state["performance"], state["market"], state.get("revision_notes", [])
    )
    return {
        "draft": draft,
        "events": [
            *draft.events,
            f"report_writer: {draft.author}, {draft.verdict.stance}/{draft.verdict.confidence}",
        ],
    }


def critic(state: ReportState, max_revisions: int = MAX_REVISIONS) -> dict[str, Any]:
    """Checks verdict, range and quoted numbers against the data; sends the draft back once."""
    inputs, performance, market, draft = (
        state["inputs"],
        state["performance"],
        state["market"],
        state["draft"],
    )
    issues = verdict_contradictions(draft.verdict, inputs, performance)
    issues += range_omissions(draft.markdown, inputs, performance)
    issues += unsupported_numbers(draft.markdown, build_figures(inputs, performance, market))
    rounds = state.get("critic_rounds", 0)
    if issues and rounds < max_revisions and draft.author != DETERMINISTIC_AUTHOR:
        return {
            "critic_rounds": rounds + 1,
            "critic_issues": issues,
            "critic_approved": False,
            "revision_notes": issues,
            "needs_revision": True,
            "events": [f"critic: sent back ({len(issues)} issues)"],
        }
    if issues:
        footer = f"_Critic: NOT approved after {rounds} revision(s): {'; '.join(issues)}._"
    else:
        footer = (
            f"_Critic: approved after {rounds} revision(s)._"
            if rounds
            else "_Critic: approved the first draft._"
        )
    return {
        "critic_rounds": rounds,
        "critic_issues": issues,
        "critic_approved": not issues,
        "needs_revision": False,
        "markdown": draft.markdown + "\n" + footer + "\n",
        "events": [f"critic: {'approved' if not issues else 'not approved'}"],
    }


def route_after_critic(state: ReportState) -> Literal["report_writer", "__end__"]:
    """Back to the writer when the critic asked for a revision, else done."""
    return "report_writer" if state.get("needs_revision") else "__end__"
