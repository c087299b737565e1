"""The structured verdict, its strict parser, and what the forecast's distribution lets it say.

A stance is read only from a JSON verdict object whose fields validate against the schema; it is
never guessed from words in prose, so "not bullish" can never become BULLISH. Ambiguous answers
(two different verdicts, a stance such as "BULLISH/NEUTRAL") are rejected, not resolved.

`band_call` is the one rule, shared by the deterministic analyst, the critic and the prompt, for
when a probabilistic forecast supports a directional stance and how much confidence its range
allows; it is a pure function of four numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


# --- What the forecast's distribution permits ---------------------------------------------------

# A directional stance needs the probability of a rise this far from a coin flip:
# BULLISH needs p_up >= P_UP_CALL, BEARISH needs p_up <= 1 - P_UP_CALL.
P_UP_CALL = 0.6
# ... and the 80 % band to lean the same way: the band's side against the call may reach at most
# this fraction as far from the last close as its side for the call (a band wholly above the last
# close leans up: nothing of it lies below).
BAND_LEAN_RATIO = 0.5
# Confidence a directional call may have, by |forecast move| / the band's half-width.
HIGH_SIGNAL = 0.8
MEDIUM_SIGNAL = 0.4
_CONFIDENCE_RANK = {"Low": 0, "Medium": 1, "High": 2}

BandLean = Literal["up", "down", "none"]


@dataclass(frozen=True)
class BandCall:
    """What the distribution permits: a stance, the highest confidence it supports, and why."""

    stance: Stance
    confidence_cap: Confidence
    reason: str


def band_lean(lower_pct: float, upper_pct: float) -> BandLean:
    """Which way the band leans around the last close (its ends as % moves vs that close)."""
    upside, downside = max(upper_pct, 0.0), max(-lower_pct, 0.0)
    if upside > 0 and downside <= BAND_LEAN_RATIO * upside:
        return "up"
    if downside > 0 and upside <= BAND_LEAN_RATIO * downside:
        return "down"
    return "none"


def signal_confidence(move_pct: float, lower_pct: float, upper_pct: float) -> Confidence:
    """The confidence a move supports against the band's width: big move, narrow band, High."""
    half_width = (upper_pct - lower_pct) / 2.0
    if half_width <= 0:
        return "High"  # a degenerate band: the forecast states no spread at all
    signal = abs(move_pct) / half_width
    if signal >= HIGH_SIGNAL:
        return "High"
    return "Medium" if signal >= MEDIUM_SIGNAL else "Low"


def lower_confidence(a: Confidence, b: Confidence) -> Confidence:
    return a if _CONFIDENCE_RANK[a] <= _CONFIDENCE_RANK[b] else b


def band_call(
    direction: str,
    move_pct: float,
    range_pct: tuple[float, float] | None,
    p_up: float | None,
) -> BandCall:
    """The stance the final step's distribution supports, given the point forecast's direction.

    BULLISH needs all three: the point forecast up, p_up >= P_UP_CALL, and the 80 % band leaning
    up (its lower end at most BAND_LEAN_RATIO as far below the last close as its upper end is
    above it); BEARISH the mirror image. Anything else is NEUTRAL: a flat forecast, p_up near a
    coin flip, a band straddling the last close about evenly, or a band leaning against the median.
    A missing p_up or band is not held against the call; with neither (an older lake), only the
    direction counts. The confidence cap of a directional call is `signal_confidence` of the move
    against the band, and Medium without a band (the width is unknown, so High is not earned).
    """
    cap: Confidence = "Medium"
    if range_pct is not None:
        cap = signal_confidence(move_pct, *range_pct)
    if direction not in ("up", "down"):
        return BandCall("NEUTRAL", cap, "the forecast is flat")
    stance: Stance = "BULLISH" if direction == "up" else "BEARISH"
    if range_pct is None and p_up is None:
        return BandCall(stance, cap, "the forecast has no range, so the point forecast decides")
    # Numbers at the report's precision (% moves to 2 decimals, p_up in % to 1), so the critic
    # finds each one among the figures.
    evidence: list[str] = []
    objections: list[str] = []
    if p_up is not None:
        chance = f"{round(100.0 * p_up, 1):.1f}%"
        evidence.append(f"the probability of a rise ({chance})")
        if direction == "up" and p_up < P_UP_CALL:
            objections.append(f"the probability of a rise is only {chance}")
        if direction == "down" and p_up > 1.0 - P_UP_CALL:
            objections.append(f"the probability of a rise is still {chance}")
    if range_pct is not None:
        low, high = (f"{round(v, 2):+.2f}%" for v in range_pct)
        evidence.insert(0, f"the 80% range ({low} to {high})")
        lean = band_lean(*range_pct)
        if lean != direction:
            side = "straddles the last close" if lean == "none" else f"leans {lean}"
            objections.append(f"the 80% range ({low} to {high}) {side}")
    if objections:
        return BandCall("NEUTRAL", cap, " and ".join(objections))
    verb = "lean" if len(evidence) > 1 else "leans"
    return BandCall(stance, cap, f"{' and '.join(evidence)} {verb} {direction}")
