"""The LLM writer's prompts and the parsing of its answers.

The prompt hands the model the same figure lines the report prints (computed by the analyst), the
final step's 80 % range and probability of a rise among them, and the verdict rules the critic
enforces, so a model that follows the rules is never sent back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from stock_assets.agents.analyst import NARRATIVE_SECTIONS, SECTIONS, build_figures
from stock_assets.agents.state import MarketSummary, PerformanceSummary, ReportInputs
from stock_assets.agents.verdict import BAND_LEAN_RATIO, HIGH_SIGNAL, P_UP_CALL

SYSTEM_PROMPT = (
    "You are a careful equity analyst writing a short daily report on one stock for an internal "
    "dashboard. Use only the figures you are given and quote them exactly as written; never "
    "invent numbers. Do not give personal investment advice."
)

ANSWER_FORMAT = """Answer in exactly this format: these four headings, nothing before the first:

## Forecast
<2-4 sentences on what the model forecasts, including its 80% range and probability of a rise>

## Model reliability
<2-4 sentences on how reliable the model has been>

## Market context
<2-4 sentences on what the market is doing>

## Verdict
```json
{"stance": "BULLISH" | "BEARISH" | "NEUTRAL", "confidence": "High" | "Medium" | "Low",
 "rationale": "<one or two sentences>"}
```

Rules for the verdict: BULLISH only if the forecast direction is up, BEARISH only if it is down,
NEUTRAL if it is flat or the model is unreliable. Confidence "High" only when the reliability
grade is "good" and there is no drift alarm. Put exactly one JSON verdict in the answer."""

# The band rule of verdict.band_call, in words, for forecasts that have a range.
_P_CALL, _P_PUT = f"{100 * P_UP_CALL:.0f}%", f"{100 * (1 - P_UP_CALL):.0f}%"
_RATIO, _SIGNAL = f"{100 * BAND_LEAN_RATIO:.0f}%", f"{100 * HIGH_SIGNAL:.0f}%"
BAND_RULES = (
    f"Rules for a forecast with an 80% range: BULLISH also needs the probability of a rise to be "
    f"at least {_P_CALL} and the range to lean up (its lower end no more than {_RATIO} as far "
    "below the last close as its upper end is above it); BEARISH is the mirror image (a "
    f"probability of a rise of at most {_P_PUT}, the range leaning down). A range straddling the "
    'last close about evenly, or a probability near 50%, means NEUTRAL. Confidence "High" also '
    f"needs the forecast move to be at least {_SIGNAL} of the range's half-width."
)
NO_BAND_RULE = (
    "This forecast has no range (its 80% range is unavailable): say so, and do not use "
    'confidence "High".'
)


class ReportFormatError(ValueError):
    """An LLM answer lacks a required section (the verdict is checked by parse_verdict)."""


def build_writer_prompt(
    inputs: ReportInputs,
    performance: PerformanceSummary,
    market: MarketSummary,
    revision_notes: Sequence[str] = (),
    previous_error: str | None = None,
) -> tuple[str, str]:
    """(system, user) messages for the report writer; the figures come verbatim from the data."""
    figures = build_figures(inputs, performance, market)
    blocks = [
        f"Stock: {inputs.ticker}. Date: {inputs.as_of_date.isoformat()}. "
        f"Model: {inputs.model_name} version {inputs.model_version}."
    ]
    for section in NARRATIVE_SECTIONS:
        blocks.append(
            f"### {section} figures\n"
            + "\n".join(f"- {f.label}: {f.text}" for f in figures[section])
        )
    if performance.notes:
        blocks.append("Performance notes: " + "; ".join(performance.notes))
    if market.news:
        blocks.append(
            "Recent headlines (context only, do not quote numbers from them):\n"
            + "\n".join(f"- {h}" for h in market.news)
        )
    blocks.append(ANSWER_FORMAT)
    blocks.append(BAND_RULES if performance.range_pct is not None else NO_BAND_RULE)
    if revision_notes:
        blocks.append(
            "A reviewer rejected your previous report because it contradicts the numbers:\n"
            + "\n".join(f"- {note}" for note in revision_notes)
            + "\nWrite the report again so that the verdict agrees with the figures."
        )
    if previous_error:
        blocks.append(
            f"Your previous answer could not be used: {previous_error}. "
            "Answer again in exactly the format above."
        )
    return SYSTEM_PROMPT, "\n\n".join(blocks)


_HEADING = re.compile(r"^\s{0,3}#{1,3}\s*(.+?)\s*#*\s*$", re.MULTILINE)


def parse_llm_sections(text: str) -> dict[str, str]:
    """Each required section's narrative in an LLM answer; ReportFormatError if one is missing."""
    wanted = {name.lower(): name for name in SECTIONS}
    found: dict[str, str] = {}
    matches = list(_HEADING.finditer(text))
    for i, match in enumerate(matches):
        name = wanted.get(match.group(1).strip().strip("*:").strip().lower())
        if name is None:
            continue
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = re.sub(r"```.*?```", "", text[match.end() : end], flags=re.DOTALL).strip()
        if name in found:
            raise ReportFormatError(f"section {name!r} appears twice")
        found[name] = body
    missing = [name for name in NARRATIVE_SECTIONS if not found.get(name)]
    if missing:
        raise ReportFormatError(f"missing or empty sections: {missing}")
    return {name: found[name] for name in NARRATIVE_SECTIONS}
