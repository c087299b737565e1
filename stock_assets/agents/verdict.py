"""The structured verdict and its strict parser.

A stance is read only from a JSON verdict object whose fields validate against the schema; it is
never guessed from words in prose, so "not bullish" can never become BULLISH. Ambiguous answers
(two different verdicts, a stance such as "BULLISH/NEUTRAL") are rejected, not resolved.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Stance = Literal["BULLISH", "BEARISH", "NEUTRAL"]
Confidence = Literal["High", "Medium", "Low"]
STANCES: tuple[str, ...] = ("BULLISH", "BEARISH", "NEUTRAL")
CONFIDENCES: tuple[str, ...] = ("High", "Medium", "Low")


class VerdictParseError(ValueError):
    """The text holds no single, valid verdict object; the reason says what was wrong."""


class Verdict(BaseModel):
    """The report's bottom line: a stance, how confident, and why."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    stance: Stance
    confidence: Confidence
    rationale: str = Field(min_length=10, max_length=1500)

    @field_validator("stance", mode="before")
    @classmethod
    def _stance_token(cls, value: Any) -> Any:
        # Exactly one of the three words, in any case; "not bullish" or "BULLISH/NEUTRAL" fail.
        if isinstance(value, str) and value.strip().upper() in STANCES:
            return value.strip().upper()
        return value

    @field_validator("confidence", mode="before")
    @classmethod
    def _confidence_token(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().capitalize() in CONFIDENCES:
            return value.strip().capitalize()
        return value

    @field_validator("rationale", mode="before")
    @classmethod
    def _rationale_text(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    def to_json(self) -> str:
        return json.dumps(
            {"stance": self.stance, "confidence": self.confidence, "rationale": self.rationale}
        )


def _json_objects(text: str) -> list[Any]:
    """Every top-level JSON object that decodes cleanly somewhere in `text` (fenced or not)."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    index = 0
    while (start := text.find("{", index)) != -1:
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        found.append(obj)
        index = end
    return found


def _candidates(text: str) -> list[dict[str, Any]]:
    """Every object claiming to be a verdict: a `stance` key (top level or under `verdict`).

    All claims count, inside code fences or in the prose, so a second verdict injected anywhere
    makes the answer ambiguous instead of silently winning or losing.
    """
    claims: list[dict[str, Any]] = []
    for obj in _json_objects(text):
        if isinstance(obj, dict) and isinstance(obj.get("verdict"), dict):
            obj = obj["verdict"]
        if isinstance(obj, dict) and "stance" in obj:
            claims.append(obj)
    return claims


def parse_verdict(text: str) -> Verdict:
    """The one verdict in an LLM answer, validated; VerdictParseError when absent or ambiguous."""
    if not isinstance(text, str) or not text.strip():
        raise VerdictParseError("empty answer")
    claims = _candidates(text)
    if not claims:
        raise VerdictParseError(
            "no JSON verdict object with a 'stance' key found (prose is never read as a verdict)"
        )
    verdicts: list[Verdict] = []
    for claim in claims:
        try:
            verdicts.append(Verdict.model_validate(claim))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise VerdictParseError(f"verdict object fails the schema: {problems}") from exc
    distinct = {(v.stance, v.confidence) for v in verdicts}
    if len(distinct) > 1:
        raise VerdictParseError(
            f"answer holds {len(distinct)} conflicting verdicts: {sorted(distinct)}"
        )
    return verdicts[-1]
