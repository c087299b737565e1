"""Report-quality rules, shared by the critic node and the `agent_report` asset check.

A report passes when it has every fixed section, a valid verdict that matches its own verdict
block, a stance consistent with the forecast direction, its 80 % range and probability of a rise
(`verdict.band_call`) and the critic, when its Forecast section discusses the range it has, and
when every number it quotes equals the data's (figure lines exactly, numbers in the prose at
their written precision).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from stock_assets.agents.analyst import SECTIONS, Figure, build_figures, range_label
from stock_assets.agents.state import PerformanceSummary, ReportInputs
from stock_assets.agents.summaries import summarize_market, summarize_performance
from stock_assets.agents.verdict import Verdict, VerdictParseError, band_call, parse_verdict
from stock_assets.quantiles import INTERVALS

_FIGURE_LINE = re.compile(r"^\s*[-*]\s+\*\*(.+?):\*\*\s*(.*)$")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_VERDICT_LABELS = {"stance", "confidence"}
# "the 80% range", "a 90 % prediction interval": the interval's name, not a figure of the data.
_INTERVAL_NAME = re.compile(
    rf"\b(?:{'|'.join(str(level) for level in INTERVALS)})\s?%\s+(?:[a-z]+\s+)?"
    r"(?:range|interval|band)s?\b",
    re.IGNORECASE,
)
# Words that discuss the range ("band" is left out: "inside the flat band" is about the median).
_RANGE_WORDS = re.compile(r"\b(?:range|interval|quantiles?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class QuotedNumber:
    value: float
    decimals: int
    suffix: str
    text: str

    @property
    def tolerance(self) -> float:
        """Half a unit of the last written digit: 1.8% stands for anything in [1.75, 1.85]."""
        return 0.5 * 10.0 ** (-self.decimals) + 1e-9


def quoted_numbers(text: str) -> list[QuotedNumber]:
    """Numbers in `text` (dates and tokens such as t+5, v3 or S&P500 are not numbers)."""
    text = _DATE.sub(" ", text)
    found: list[QuotedNumber] = []
    for match in _NUMBER.finditer(text):
        start, raw = match.start(), match.group(0)
        before = text[start - 1] if start > 0 else " "
        if before.isalnum() or before in "._^":
            continue
        if raw[0] not in "+-" and before in "+-" and start > 1 and text[start - 2].isalnum():
            continue  # t+5, x-1
        rest = text[match.end() : match.end() + 4]
        suffix = ""
        if rest.startswith("%"):
            suffix = "%"
        elif re.match(r"\s?pp\b", rest):
            suffix = "pp"
        elif re.match(r"x\b", rest):
            suffix = "x"
        elif rest[:1].isalpha() or rest[:1] == "_":
            continue  # 20d, 5th: part of a word
        digits = raw.lstrip("+-").replace(",", "")
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        found.append(QuotedNumber(float(raw.replace(",", "")), decimals, suffix, raw + suffix))
    return found


def _is_checked(number: QuotedNumber) -> bool:
    """Prose numbers that claim to be data: percentages, pp, ratios, and 2+ decimal figures."""
    return bool(number.suffix) or number.decimals >= 2


@dataclass
class _ParsedReport:
    headings: list[str] = field(default_factory=list)
    figure_lines: list[tuple[str, str]] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)
    byline: str = ""


def _parse_markdown(markdown: str) -> _ParsedReport:
    parsed = _ParsedReport()
    in_code = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
            continue
        if in_code or not stripped:
            continue
        if stripped.startswith("## "):
            parsed.headings.append(stripped[3:].strip())
        elif stripped.startswith("#") or stripped.startswith(">"):
            continue  # title, headlines (quotes of outside text)
        elif stripped.startswith("_"):
            if stripped.startswith("_Written by") and not parsed.byline:
                parsed.byline = stripped
        elif match := _FIGURE_LINE.match(stripped):
            parsed.figure_lines.append((match.group(1).strip(), match.group(2).strip()))
        else:
            parsed.prose.append(stripped)
    return parsed


def missing_sections(markdown: str) -> list[str]:
    """Fixed sections absent from the report, or present more than once."""
    headings = _parse_markdown(markdown).headings
    return [name for name in SECTIONS if headings.count(name) != 1]


def figure_mismatches(markdown: str, figures: Mapping[str, Sequence[Figure]]) -> list[str]:
    """Figure lines whose numbers differ from the data's, and figures the report leaves out."""
    expected = {fig.label: fig for section in figures.values() for fig in section}
    seen: set[str] = set()
    problems: list[str] = []
    for label, text in _parse_markdown(markdown).figure_lines:
        fig = expected.get(label)
        if fig is None:
            continue
        seen.add(label)
        quoted = quoted_numbers(text)
        if len(quoted) != len(fig.values) or any(
            abs(q.value - v) > q.tolerance for q, v in zip(quoted, fig.values, strict=True)
        ):
            problems.append(f"{label}: report says {text!r}, data says {fig.text!r}")
    problems += [
        f"{label}: figure missing from the report" for label in expected if label not in seen
    ]
    return problems


def unsupported_numbers(markdown: str, figures: Mapping[str, Sequence[Figure]]) -> list[str]:
    """Numbers in the prose (and in unknown bullet lines) that match no figure of the data."""
    known_labels = {fig.label for section in figures.values() for fig in section}
    allowed = [abs(v) for section in figures.values() for fig in section for v in fig.values]
    allowed += [a / 100.0 for a in allowed]
    parsed = _parse_markdown(markdown)
    texts = list(parsed.prose) + [
        text
        for label, text in parsed.figure_lines
        if label not in known_labels and label.lower() not in _VERDICT_LABELS
    ]
    problems: list[str] = []
    for text in texts:
        for number in quoted_numbers(_INTERVAL_NAME.sub("range", text)):
            if _is_checked(number) and not any(
                abs(abs(number.value) - a) <= number.tolerance for a in allowed
            ):
                problems.append(f"{number.text} is not a figure of the data (in: {text[:80]!r})")
    return problems


def verdict_contradictions(
    verdict: Verdict, inputs: ReportInputs, performance: PerformanceSummary
) -> list[str]:
    """How the verdict contradicts the numbers: stance vs direction, confidence vs reliability."""
    issues: list[str] = []
    move = f"{performance.final_return_pct:+.2f}% at t+{inputs.final_forecast.horizon}"
    if verdict.stance == "BULLISH" and performance.direction != "up":
        issues.append(
            f"stance BULLISH but the forecast direction is {performance.direction} ({move})"
        )
    if verdict.stance == "BEARISH" and performance.direction != "down":
        issues.append(
            f"stance BEARISH but the forecast direction is {performance.direction} ({move})"
        )
    if verdict.confidence == "High" and performance.grade in ("unproven", "weak"):
        issues.append(f"confidence High but the model's reliability grade is {performance.grade}")
    call = band_call(
        performance.direction, performance.final_return_pct, performance.range_pct, performance.p_up
    )
    wanted = {"BULLISH": "up", "BEARISH": "down"}.get(verdict.stance)
    if wanted == performance.direction and call.stance != verdict.stance:
        issues.append(f"stance {verdict.stance} but {call.reason}")
    overconfident = verdict.confidence == "High" and call.confidence_cap != "High"
    if verdict.stance != "NEUTRAL" and overconfident:
        issues.append(
            "confidence High but "
            + (
                f"the 80% range is too wide against the move (at most {call.confidence_cap})"
                if performance.range_pct is not None
                else "the forecast has no range to measure its spread (at most Medium)"
            )
        )
    return issues


def _section_prose(markdown: str, section: str) -> str:
    """The prose of one `## section` (figure lines, quotes and code left out)."""
    lines: list[str] = []
    inside = in_code = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
            continue
        if stripped.startswith("## "):
            inside = stripped[3:].strip() == section
            continue
        if inside and not in_code and stripped and not _FIGURE_LINE.match(stripped):
            if not stripped.startswith((">", "_")):
                lines.append(stripped)
    return " ".join(lines)


def range_omissions(
    markdown: str, inputs: ReportInputs, performance: PerformanceSummary
) -> list[str]:
    """When the forecast has an 80 % range, the report must show it and its prose discuss it."""
    if performance.range_pct is None:
        return []
    label = range_label(inputs)
    if label not in {fig_label for fig_label, _ in _parse_markdown(markdown).figure_lines}:
        return [f"the report leaves out its {label} figure"]
    if not _RANGE_WORDS.search(_section_prose(markdown, "Forecast")):
        return ["the Forecast section does not discuss the 80% range of the forecast"]
    return []


@dataclass(frozen=True)
class QualityResult:
    """Outcome of the quality rules; `metadata` holds plain values for an AssetCheckResult."""

    passed: bool
    failures: tuple[str, ...]
    metadata: dict[str, Any]


def check_report_quality(
    markdown: str,
    verdict: Verdict | Mapping[str, Any],
    inputs: ReportInputs,
    critic_approved: bool | None = None,
    author: str | None = None,
) -> QualityResult:
    """All quality rules for one report; `verdict` may be a Verdict or a table row's fields."""
    failures: list[str] = []
    performance = summarize_performance(inputs)
    figures = build_figures(inputs, performance, summarize_market(inputs))

    missing = missing_sections(markdown)
    if missing:
        failures.append(f"sections missing or repeated: {missing}")

    structured: Verdict | None
    try:
        structured = (
            verdict if isinstance(verdict, Verdict) else Verdict.model_validate(dict(verdict))
        )
    except ValidationError as exc:
        structured = None
        failures.append(f"structured verdict invalid: {exc.errors()[0]['msg']}")
    try:
        embedded: Verdict | None = parse_verdict(markdown)
    except VerdictParseError as exc:
        embedded = None
        failures.append(f"report's verdict block invalid: {exc}")
    if (
        structured
        and embedded
        and (structured.stance, structured.confidence) != (embedded.stance, embedded.confidence)
    ):
        failures.append(
            f"report's verdict block ({embedded.stance}/{embedded.confidence}) differs from the "
            f"structured verdict ({structured.stance}/{structured.confidence})"
        )
    parsed = _parse_markdown(markdown)
    lines = dict((label.lower(), text) for label, text in parsed.figure_lines)
    if structured and (lines.get("stance"), lines.get("confidence")) != (
        structured.stance,
        structured.confidence,
    ):
        failures.append("the Stance/Confidence lines do not match the structured verdict")

    contradictions = verdict_contradictions(structured, inputs, performance) if structured else []
    failures += contradictions
    omissions = range_omissions(markdown, inputs, performance)
    failures += omissions
    if critic_approved is False:
        failures.append("the critic did not approve the verdict")

    if not parsed.byline:
        failures.append("the report does not say who wrote it")
    elif author is not None and f"Written by {author}" not in parsed.byline:
        failures.append(f"byline does not name the author {author!r}")

    mismatches = figure_mismatches(markdown, figures)
    unsupported = unsupported_numbers(markdown, figures)
    failures += mismatches + unsupported

    metadata: dict[str, Any] = {
        "sections_missing": ", ".join(missing),
        "stance": structured.stance if structured else "invalid",
        "confidence": structured.confidence if structured else "invalid",
        "forecast_direction": performance.direction,
        "forecast_return_pct": round(performance.final_return_pct, 4),
        "reliability_grade": performance.grade,
        "range_80_pct": "unavailable"
        if performance.range_pct is None
        else f"{performance.range_pct[0]:+.2f}% to {performance.range_pct[1]:+.2f}%",
        "p_up": "unavailable" if performance.p_up is None else round(performance.p_up, 4),
        "critic_approved": critic_approved if critic_approved is not None else "unknown",
        "contradictions": len(contradictions),
        "number_mismatches": len(mismatches) + len(unsupported),
        "failures": "\n".join(failures),
    }
    return QualityResult(passed=not failures, failures=tuple(failures), metadata=metadata)
