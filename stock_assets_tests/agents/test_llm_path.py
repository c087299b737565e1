"""The LLM path: parsing, one retry, fallback, the critic's one revision, real ChatOllama."""

from __future__ import annotations

import time

import httpx
import pytest

from stock_assets.agents.graph import write_report
from stock_assets.agents.llm import (
    DeterministicAnalystLLM,
    OllamaReportLLM,
    make_report_llm,
)
from stock_assets.agents.quality import check_report_quality


def _prompt(fake, call: int) -> str:
    return fake.calls[call][-1].content


def test_valid_llm_answer_becomes_the_report(make_inputs, scripted_llm, answer) -> None:
    inputs = make_inputs(final_return_pct=-2.0)
    llm, fake = scripted_llm(answer("BEARISH", "Medium", "The forecast points down by 2.00%."))
    result = write_report(inputs, llm)
    assert result.author == "fake:scripted"
    assert (result.verdict.stance, result.verdict.confidence) == ("BEARISH", "Medium")
    assert result.critic_rounds == 0 and result.critic_approved
    assert len(fake.calls) == 1
    # The prompt carries the data's figures verbatim; the report keeps them, adds the LLM's prose.
    assert "- Rolling MAPE: 1.84%" in _prompt(fake, 0)
    assert "- **Rolling MAPE:** 1.84%" in result.markdown
    assert "The stock trades in line with the broad market." in result.markdown
    assert "_Written by fake:scripted. Model" in result.markdown
    assert check_report_quality(
        result.markdown, result.verdict, inputs, result.critic_approved, result.author
    ).passed


def test_the_prompt_carries_the_range_p_up_and_the_band_rule(
    make_inputs, scripted_llm, answer
) -> None:
    inputs = make_inputs(final_return_pct=-1.0)  # a range of about -5 % to +3 %: no call
    band = inputs.final_forecast.interval(80)
    llm, fake = scripted_llm(
        answer("BEARISH", "Medium", "The forecast points down."),
        answer("NEUTRAL", "Medium", "The range straddles the last close."),
    )
    result = write_report(inputs, llm)
    first = _prompt(fake, 0)
    assert f"- 80% range t+5: {band[0]:.2f} to {band[1]:.2f} (" in first
    chance = 100 * inputs.final_forecast.p_up
    assert f"- Probability of a rise by t+5: {chance:.1f}%" in first
    assert "BULLISH also needs the probability of a rise to be at least 60%" in first
    # BEARISH on a range that straddles the close is sent back, with the reason, once.
    assert "stance BEARISH but the 80% range (" in _prompt(fake, 1)
    assert (result.verdict.stance, result.critic_rounds, result.critic_approved) == (
        "NEUTRAL", 1, True,
    )  # fmt: skip
    # A forecast from an older lake: the prompt says the range is unavailable.
    old_llm, old_fake = scripted_llm(answer("BEARISH", "Medium", "The forecast points down."))
    old = write_report(make_inputs(final_return_pct=-1.0, daily_vol=None), old_llm)
    assert "- 80% range t+5: unavailable (the forecast has no quantiles)" in _prompt(old_fake, 0)
    assert "its 80% range is unavailable): say so" in _prompt(old_fake, 0)
    assert old.verdict.stance == "BEARISH" and old.critic_approved


def test_invalid_answer_is_retried_once_with_the_reason(make_inputs, scripted_llm, answer) -> None:
    inputs = make_inputs(final_return_pct=2.0)
    llm, fake = scripted_llm("I am not bullish at all, honestly.", answer("BULLISH", "Medium"))
    result = write_report(inputs, llm)
    assert result.author == "fake:scripted" and result.verdict.stance == "BULLISH"
    assert len(fake.calls) == 2
    assert "Your previous answer could not be used: no JSON verdict object" in _prompt(fake, 1)
    assert "Your previous answer could not be used" not in _prompt(fake, 0)
    assert any("answer 1 invalid" in event for event in result.events)


@pytest.mark.parametrize(
    "bad_answers",
    [
        ("The outlook is not bullish.", "Still not bullish, and not bearish either."),
        (
            '```json\n{"stance": "not bullish", "confidence": "High", '
            '"rationale": "Because momentum fades."}\n```',
            "BULLISH!",
        ),
        (
            "## Forecast\nUp.\n## Verdict\n"
            + '{"stance": "BULLISH", "confidence": "High", "rationale": "Missing sections here."}',
            "no",
        ),
    ],
)
def test_two_invalid_answers_fall_back_to_the_deterministic_analyst(
    make_inputs, scripted_llm, bad_answers
) -> None:
    inputs = make_inputs(final_return_pct=-2.0)
    llm, fake = scripted_llm(*bad_answers)
    result = write_report(inputs, llm)
    assert len(fake.calls) == 2
    assert result.author == "deterministic-analyst"
    assert (
        "_Written by deterministic-analyst (fallback: fake:scripted answers failed validation)."
        in result.markdown
    )
    assert (
        result.verdict.stance == "BEARISH"
    )  # from the rules, never from the words "bullish" in the answers
    assert sum("invalid" in event for event in result.events) == 2
    assert check_report_quality(
        result.markdown, result.verdict, inputs, result.critic_approved, result.author
    ).passed


def test_reasoning_before_the_answer_is_ignored(make_inputs, scripted_llm, answer) -> None:
    thinking = (
        '<think>Maybe {"stance": "BULLISH", "confidence": "High", '
        '"rationale": "Momentum could carry it higher."}? No, the forecast is down.</think>\n'
    )
    llm, fake = scripted_llm(thinking + answer("BEARISH", "Medium"))
    result = write_report(make_inputs(final_return_pct=-2.0), llm)
    assert len(fake.calls) == 1 and result.author == "fake:scripted"
    assert result.verdict.stance == "BEARISH"


def test_connection_failure_falls_back_at_once(make_inputs, scripted_llm, answer) -> None:
    llm, fake = scripted_llm(
        httpx.ConnectError("[Errno 111] Connection refused"), answer("BULLISH")
    )
    result = write_report(make_inputs(final_return_pct=2.0), llm)
    assert len(fake.calls) == 1  # no retry against a dead server
    assert result.author == "deterministic-analyst"
    assert "fallback: fake:scripted unreachable" in result.markdown
    assert any("ConnectError" in event for event in result.events)


def test_critic_sends_a_contradiction_back_and_the_revision_is_accepted(
    make_inputs, scripted_llm, answer
) -> None:
    inputs = make_inputs(final_return_pct=-2.0)
    llm, fake = scripted_llm(answer("BULLISH", "Medium"), answer("BEARISH", "Medium"))
    result = write_report(inputs, llm)
    assert len(fake.calls) == 2
    assert "stance BULLISH but the forecast direction is down (-2.00% at t+5)" in _prompt(fake, 1)
    assert (result.verdict.stance, result.critic_rounds, result.critic_approved) == (
        "BEARISH",
        1,
        True,
    )
    assert "_Critic: approved after 1 revision(s)._" in result.markdown
    assert check_report_quality(
        result.markdown, result.verdict, inputs, result.critic_approved, result.author
    ).passed


def test_critic_sends_back_at_most_once(make_inputs, scripted_llm, answer) -> None:
    inputs = make_inputs(final_return_pct=-2.0)
    llm, fake = scripted_llm(answer("BULLISH", "Medium"), answer("BULLISH", "High"))
    result = write_report(inputs, llm)
    assert len(fake.calls) == 2  # the script would raise on a third call
    assert (result.verdict.stance, result.critic_rounds, result.critic_approved) == (
        "BULLISH",
        1,
        False,
    )
    quality = check_report_quality(
        result.markdown, result.verdict, inputs, result.critic_approved, result.author
    )
    assert not quality.passed
    assert "the critic did not approve the verdict" in quality.failures
    assert "stance BULLISH but the forecast direction is down (-2.00% at t+5)" in quality.failures


def test_critic_catches_an_invented_number(make_inputs, scripted_llm, answer) -> None:
    inputs = make_inputs(final_return_pct=2.0)
    llm, fake = scripted_llm(
        answer("BULLISH", prose="It was right 91.50% of the time."), answer("BULLISH")
    )
    result = write_report(inputs, llm)
    assert "91.50% is not a figure of the data" in _prompt(fake, 1)
    assert result.critic_rounds == 1 and result.critic_approved


def test_real_chat_ollama_without_a_server_falls_back(make_inputs, closed_port_url) -> None:
    url = closed_port_url
    chosen = make_report_llm(url, "llama3.2", probe_timeout_s=0.5)
    assert (
        isinstance(chosen, DeterministicAnalystLLM) and chosen.note == "ollama:llama3.2 unreachable"
    )
    assert isinstance(make_report_llm(None, "llama3.2"), DeterministicAnalystLLM)
    # Past the probe (server gone mid-run): the real ChatOllama raises, the report is still written.
    llm = OllamaReportLLM(url, "llama3.2")
    started = time.perf_counter()
    result = write_report(make_inputs(), llm)
    print(f"ChatOllama fallback took {time.perf_counter() - started:.3f}s")
    assert result.author == "deterministic-analyst"
    assert any(
        "ollama:llama3.2 unavailable on attempt 1: ConnectError" in event for event in result.events
    )


def test_real_chat_ollama_against_a_stub_server(make_inputs, stub_ollama) -> None:
    llm = make_report_llm(stub_ollama, "stub-model")
    assert isinstance(llm, OllamaReportLLM) and llm.name == "ollama:stub-model"
    assert isinstance(make_report_llm(stub_ollama, "not-pulled"), DeterministicAnalystLLM)
    result = write_report(make_inputs(final_return_pct=-2.0, performance=None), llm)
    assert result.author == "ollama:stub-model"
    assert (result.verdict.stance, result.verdict.confidence) == ("BEARISH", "Low")
    assert "_Written by ollama:stub-model." in result.markdown
