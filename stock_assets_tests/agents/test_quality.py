"""The report-quality rules pass a good report and fail each kind of crafted bad report."""

from __future__ import annotations

import pytest

from stock_assets.agents.graph import write_report
from stock_assets.agents.llm import DeterministicAnalystLLM
from stock_assets.agents.quality import check_report_quality, quoted_numbers
from stock_assets.agents.verdict import Verdict


@pytest.fixture
def good(make_inputs):
    inputs = make_inputs(final_return_pct=-2.0)
    return inputs, write_report(inputs, DeterministicAnalystLLM())


def test_good_report_passes_with_metadata(good) -> None:
    inputs, result = good
    quality = check_report_quality(
        result.markdown,
        result.verdict,
        inputs,
        critic_approved=True,
        author="deterministic-analyst",
    )
    assert quality.passed and quality.failures == ()
    assert quality.metadata["stance"] == "BEARISH"
    assert quality.metadata["forecast_direction"] == "down"
    assert quality.metadata["forecast_return_pct"] == pytest.approx(-2.0)
    assert quality.metadata["number_mismatches"] == 0 and quality.metadata["contradictions"] == 0
    # A table row's fields (strings) are accepted in place of a Verdict.
    row = {
        "stance": "BEARISH",
        "confidence": result.verdict.confidence,
        "rationale": result.verdict.rationale,
    }
    assert check_report_quality(result.markdown, row, inputs).passed


def _swap(markdown: str, old: str, new: str) -> str:
    assert old in markdown, old
    return markdown.replace(old, new)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda md: _swap(md, "## Market context\n", "## Markets\n"),
            "sections missing or repeated: ['Market context']",
        ),
        (lambda md: md + "\n## Verdict\nAgain.\n", "sections missing or repeated: ['Verdict']"),
        (
            lambda md: _swap(md, "- **Rolling MAPE:** 1.84%", "- **Rolling MAPE:** 0.84%"),
            "Rolling MAPE: report says '0.84%', data says '1.84%'",
        ),
        (
            lambda md: _swap(md, "- **Naive MAPE:** 2.10%\n", ""),
            "Naive MAPE: figure missing from the report",
        ),
        (
            lambda md: _swap(md, "## Verdict\n", "Insiders expect a 14.25% drop.\n\n## Verdict\n"),
            "14.25% is not a figure of the data",
        ),
        (
            lambda md: _swap(md, "_Written by deterministic-analyst.", "_Anonymous."),
            "the report does not say who wrote it",
        ),
    ],
)
def test_crafted_bad_reports_fail(good, mutate, expected) -> None:
    inputs, result = good
    quality = check_report_quality(
        mutate(result.markdown), result.verdict, inputs, critic_approved=True
    )
    assert not quality.passed
    assert any(failure.startswith(expected) for failure in quality.failures), quality.failures


def test_stance_against_the_forecast_fails(good) -> None:
    inputs, result = good
    bullish = Verdict(
        stance="BULLISH", confidence=result.verdict.confidence, rationale=result.verdict.rationale
    )
    markdown = result.markdown.replace(
        "BEARISH", "BULLISH"
    )  # consistent with itself, not with the data
    quality = check_report_quality(markdown, bullish, inputs, critic_approved=True)
    assert quality.failures == (
        "stance BULLISH but the forecast direction is down (-2.00% at t+5)",
    )
    assert quality.metadata["contradictions"] == 1


def test_overconfidence_on_an_unproven_model_fails(make_inputs) -> None:
    inputs = make_inputs(final_return_pct=-2.0, performance=None)
    result = write_report(inputs, DeterministicAnalystLLM())
    high = Verdict(
        stance=result.verdict.stance, confidence="High", rationale=result.verdict.rationale
    )
    markdown = result.markdown.replace(
        f"**Confidence:** {result.verdict.confidence}", "**Confidence:** High"
    ).replace(f'"confidence": "{result.verdict.confidence}"', '"confidence": "High"')
    quality = check_report_quality(markdown, high, inputs)
    assert quality.failures == (
        "confidence High but the model's reliability grade is unproven",
        "confidence High but the 80% range is too wide against the move (at most Medium)",
    )


def test_verdict_problems_fail(good) -> None:
    inputs, result = good
    invalid_row = {
        "stance": "BEARISH",
        "confidence": "Very High",
        "rationale": result.verdict.rationale,
    }
    assert any(
        f.startswith("structured verdict invalid")
        for f in check_report_quality(result.markdown, invalid_row, inputs).failures
    )

    neutral = Verdict(
        stance="NEUTRAL", confidence=result.verdict.confidence, rationale=result.verdict.rationale
    )
    failures = check_report_quality(result.markdown, neutral, inputs).failures
    assert any("differs from the structured verdict (NEUTRAL/" in f for f in failures)
    assert "the Stance/Confidence lines do not match the structured verdict" in failures

    no_block = result.markdown.split("```json")[0]
    assert any(
        f.startswith("report's verdict block invalid")
        for f in check_report_quality(no_block, result.verdict, inputs).failures
    )

    rejected = check_report_quality(result.markdown, result.verdict, inputs, critic_approved=False)
    assert rejected.failures == ("the critic did not approve the verdict",)

    wrong_author = check_report_quality(
        result.markdown, result.verdict, inputs, author="ollama:llama3.2"
    )
    assert wrong_author.failures == ("byline does not name the author 'ollama:llama3.2'",)


def test_quoted_numbers_skip_dates_and_tokens() -> None:
    text = (
        "On 2024-06-03 the t+5 forecast for S&P500 is +2.10 pp, volume 1.15x, 1,234.56 and 20d; "
        "-3% in 5-day."
    )
    assert [(n.value, n.decimals, n.suffix) for n in quoted_numbers(text)] == [
        (2.10, 2, "pp"),
        (1.15, 2, "x"),
        (1234.56, 2, ""),
        (-3.0, 0, "%"),
        (5.0, 0, ""),
    ]


def test_a_directional_stance_the_range_does_not_support_fails(make_inputs) -> None:
    # Down 1 % in a range of about -5 % to +3 %: the deterministic analyst says NEUTRAL.
    inputs = make_inputs(final_return_pct=-1.0)
    result = write_report(inputs, DeterministicAnalystLLM())
    assert result.verdict.stance == "NEUTRAL" and "straddles the last close" in result.markdown
    bearish = Verdict(stance="BEARISH", confidence="Medium", rationale=result.verdict.rationale)
    markdown = result.markdown.replace("NEUTRAL", "BEARISH")
    [failure] = check_report_quality(markdown, bearish, inputs).failures
    assert failure.startswith("stance BEARISH but the 80% range (")
    assert failure.endswith(") straddles the last close")
    # From an older lake the same forecast may be called BEARISH: there is no range to object.
    old = make_inputs(final_return_pct=-1.0, daily_vol=None)
    old_result = write_report(old, DeterministicAnalystLLM())
    assert old_result.verdict.stance == "BEARISH"
    assert check_report_quality(old_result.markdown, old_result.verdict, old).passed


def test_a_report_must_show_and_discuss_the_range_it_has(good) -> None:
    inputs, result = good
    range_line = next(
        line for line in result.markdown.splitlines() if line.startswith("- **80% range t+5:**")
    )
    without_line = result.markdown.replace(range_line + "\n", "")
    failures = check_report_quality(without_line, result.verdict, inputs).failures
    assert "the report leaves out its 80% range t+5 figure" in failures
    assert "80% range t+5: figure missing from the report" in failures
    # The prose of the Forecast section must talk about the range (an LLM may skip it).
    forecast_prose = next(
        line for line in result.markdown.splitlines() if line.startswith("Model child_lstm_AAPL")
    )
    silent = result.markdown.replace(forecast_prose, "The model expects a fall.")
    assert check_report_quality(silent, result.verdict, inputs).failures == (
        "the Forecast section does not discuss the 80% range of the forecast",
    )
    # "80% range" names the interval: it is not a number the data must contain.
    named = result.markdown.replace(forecast_prose, "The model's 80% range is wide.")
    assert check_report_quality(named, result.verdict, inputs).passed
