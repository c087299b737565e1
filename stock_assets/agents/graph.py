"""The report team as a LangGraph graph, and `write_report`: cache lookup, graph run, cache store.

This is what the `agent_report` asset calls for one (date, ticker) partition.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from stock_assets.agents.llm import ReportLLM
from stock_assets.agents.nodes import (
    MAX_REVISIONS,
    NewsFetcher,
    critic,
    market_expert,
    performance_analyst,
    report_writer,
    route_after_critic,
)
from stock_assets.agents.state import ReportInputs, ReportResult, ReportState

if TYPE_CHECKING:
    from stock_assets.agents.cache import ReportCache

logger = logging.getLogger(__name__)


def build_report_graph(
    llm: ReportLLM, news_fetcher: NewsFetcher | None = None, max_revisions: int = MAX_REVISIONS
) -> Any:
    """performance_analyst -> market_expert -> report_writer -> critic (-> writer at most once)."""
    from langgraph.graph import END, START, StateGraph

    def _market_expert(state: ReportState) -> dict[str, Any]:
        return market_expert(state, news_fetcher=news_fetcher)

    def _report_writer(state: ReportState) -> dict[str, Any]:
        return report_writer(state, llm=llm)

    def _critic(state: ReportState) -> dict[str, Any]:
        return critic(state, max_revisions=max_revisions)

    graph = StateGraph(ReportState)
    graph.add_node("performance_analyst", performance_analyst)
    graph.add_node("market_expert", _market_expert)
    graph.add_node("report_writer", _report_writer)
    graph.add_node("critic", _critic)
    graph.add_edge(START, "performance_analyst")
    graph.add_edge("performance_analyst", "market_expert")
    graph.add_edge("market_expert", "report_writer")
    graph.add_edge("report_writer", "critic")
    graph.add_conditional_edges(
        "critic", route_after_critic, {"report_writer": "report_writer", "__end__": END}
    )
    return graph.compile()


def run_report_graph(graph: Any, inputs: ReportInputs) -> ReportResult:
    """One pass of a compiled graph over `inputs`, as a ReportResult (cache_hit False)."""
    final: ReportState = graph.invoke({"inputs": inputs, "critic_rounds": 0, "events": []})
    draft = final["draft"]
    return ReportResult(
        ticker=inputs.ticker,
        as_of_date=inputs.as_of_date,
        markdown=final["markdown"],
        verdict=draft.verdict,
        author=draft.author,
        cache_hit=False,
        critic_rounds=final.get("critic_rounds", 0),
        critic_approved=final.get("critic_approved", False),
        critic_issues=tuple(final.get("critic_issues", [])),
        model_version=inputs.model_version,
        events=tuple(final.get("events", [])),
    )


def write_report(
    inputs: ReportInputs,
    llm: ReportLLM,
    cache: ReportCache | None = None,
    news_fetcher: NewsFetcher | None = None,
    graph: Any | None = None,
) -> ReportResult:
    """The report for one (date, ticker): from the cache for known inputs, else from the graph.

    Pass a prebuilt `graph` (build_report_graph with the same llm) to skip compiling it per call.
    """
    if cache is not None:
        cached = cache.lookup(inputs, requested_by=llm.name)
        if cached is not None:
            return cached
    result = run_report_graph(graph or build_report_graph(llm, news_fetcher), inputs)
    if cache is not None:
        cache.store(inputs, result, requested_by=llm.name)
    return result
