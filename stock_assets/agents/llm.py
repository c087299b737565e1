"""Who writes the report: a chat model (Ollama) when one is configured and answers, else templates.

The LLM path never blocks a report: an unreachable server falls back to the deterministic analyst
at once, an answer that fails validation is retried once with the reason, then falls back. The
report's author says which writer produced it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stock_assets.agents.analyst import (
    DETERMINISTIC_AUTHOR,
    build_figures,
    render_report,
    write_deterministic_draft,
)
from stock_assets.agents.prompts import ReportFormatError, build_writer_prompt, parse_llm_sections
from stock_assets.agents.state import MarketSummary, PerformanceSummary, ReportDraft, ReportInputs
from stock_assets.agents.verdict import VerdictParseError, parse_verdict

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

logger = logging.getLogger(__name__)

_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)
MAX_ATTEMPTS = 2  # one answer and one retry, then the deterministic analyst


class LLMUnavailableError(RuntimeError):
    """The chat model could not be reached (connection refused, timeout, unknown model)."""


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "no usable server": connection and HTTP failures, Ollama errors."""
    import httpx

    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, httpx.HTTPError]
    try:
        import ollama

        errors += [ollama.ResponseError, ollama.RequestError]
    except ImportError:  # langchain-ollama not installed: only the generic errors apply
        pass
    return tuple(errors)


class ReportLLM:
    """A report writer's language model; `name` is what the report's byline says."""

    name: str = DETERMINISTIC_AUTHOR
    deterministic: bool = True
    note: str = ""  # why this writer was chosen, shown in the byline (e.g. "Ollama unreachable")

    def complete(self, system: str, prompt: str) -> str:
        """The model's answer; raises LLMUnavailableError when the model cannot be reached."""
        raise NotImplementedError("the deterministic analyst does not call a model")


class DeterministicAnalystLLM(ReportLLM):
    """No model: the analyst writes every section from templates."""

    def __init__(self, note: str = "") -> None:
        self.note = note


class ChatModelReportLLM(ReportLLM):
    """Any langchain chat model (ChatOllama in production, a scripted fake in tests)."""

    deterministic = False

    def __init__(self, chat_model: BaseChatModel, name: str) -> None:
        self.chat_model = chat_model
        self.name = name

    def complete(self, system: str, prompt: str) -> str:
        from langchain_core.messages import HumanMessage, SystemMessage

        try:
            message = self.chat_model.invoke(
                [SystemMessage(content=system), HumanMessage(content=prompt)]
            )
        except _unavailable_errors() as exc:
            raise LLMUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        content: Any = message.content
        if isinstance(content, list):  # content blocks: keep the text parts
            content = "".join(
                part.get("text", "") if isinstance(part, dict) else str(part) for part in content
            )
        # Reasoning models think aloud first; a verdict-like object in there is not the answer.
        return _THINKING.sub("", str(content))


class OllamaReportLLM(ChatModelReportLLM):
    """ChatOllama against a configured server and model."""

    def __init__(
        self,
        base_url: str,
        model: str,
        temperature: float = 0.0,
        request_timeout_s: float = 120.0,
        probe_timeout_s: float = 0.5,
    ) -> None:
        from langchain_ollama import ChatOllama

        self.base_url = base_url.rstrip("/")
        self.model = model
        self.probe_timeout_s = probe_timeout_s
        chat = ChatOllama(
            base_url=self.base_url,
            model=model,
            temperature=temperature,
            client_kwargs={"timeout": request_timeout_s},
        )
        super().__init__(chat, name=f"ollama:{model}")

    def probe(self) -> tuple[bool, str]:
        """Cheap reachability check: GET /api/tags with a short timeout, and the model is pulled."""
        import httpx

        try:
            response = httpx.get(f"{self.base_url}/api/tags", timeout=self.probe_timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        names = {m.get("name", "") for m in response.json().get("models", [])}
        names |= {n.removesuffix(":latest") for n in names}
        if self.model not in names:
            return False, f"model {self.model!r} is not pulled on {self.base_url}"
        return True, "ok"


def make_report_llm(
    ollama_url: str | None,
    ollama_model: str | None,
    probe_timeout_s: float = 0.5,
    request_timeout_s: float = 120.0,
) -> ReportLLM:
    """Ollama when a URL and model are configured and the server answers; else the templates."""
    if not ollama_url or not ollama_model:
        return DeterministicAnalystLLM()
    llm = OllamaReportLLM(
        ollama_url,
        ollama_model,
        probe_timeout_s=probe_timeout_s,
        request_timeout_s=request_timeout_s,
    )
    reachable, reason = llm.probe()
    if not reachable:
        logger.warning("Ollama not usable (%s); reports use the deterministic analyst", reason)
        return DeterministicAnalystLLM(note=f"ollama:{ollama_model} unreachable")
    return llm


def write_draft(
    llm: ReportLLM,
    inputs: ReportInputs,
    performance: PerformanceSummary,
    market: MarketSummary,
    revision_notes: Sequence[str] = (),
) -> ReportDraft:
    """A validated draft from the LLM; one retry on an invalid answer, then the templates."""
    if llm.deterministic:
        return write_deterministic_draft(inputs, performance, market, author_note=llm.note)
    events: list[str] = []
    error: str | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        system, prompt = build_writer_prompt(inputs, performance, market, revision_notes, error)
        try:
            answer = llm.complete(system, prompt)
        except LLMUnavailableError as exc:
            events.append(f"{llm.name} unavailable on attempt {attempt}: {exc}")
            logger.warning(
                "%s unavailable (%s); falling back to the deterministic analyst", llm.name, exc
            )
            return write_deterministic_draft(
                inputs,
                performance,
                market,
                author_note=f"fallback: {llm.name} unreachable",
                events=tuple(events),
            )
        problems: list[str] = []
        try:
            verdict = parse_verdict(answer)
        except VerdictParseError as exc:
            problems.append(str(exc))
        try:
            narratives = parse_llm_sections(answer)
        except ReportFormatError as exc:
            problems.append(str(exc))
        if problems:
            error = "; ".join(problems)
            events.append(f"{llm.name} answer {attempt} invalid: {error}")
            continue
        markdown = render_report(
            inputs,
            build_figures(inputs, performance, market),
            narratives,
            verdict,
            llm.name,
            market,
        )
        return ReportDraft(
            markdown=markdown,
            verdict=verdict,
            author=llm.name,
            attempts=attempt,
            events=tuple(events),
        )
    logger.warning(
        "%s gave %d invalid answers; falling back to the deterministic analyst",
        llm.name,
        MAX_ATTEMPTS,
    )
    draft = write_deterministic_draft(
        inputs,
        performance,
        market,
        author_note=f"fallback: {llm.name} answers failed validation",
        events=tuple(events),
    )
    return ReportDraft(
        markdown=draft.markdown,
        verdict=draft.verdict,
        author=draft.author,
        attempts=MAX_ATTEMPTS,
        events=draft.events,
    )
