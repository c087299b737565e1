"""The promotion gate: when a newly trained model may take the `production` alias.

Why a pure function: promotion is a decision, so it is made on numbers alone and unit-tested on
crafted scores. The caller must compute every score on the same recent window the challenger
did not train on: the point forecast must not be worse than naive persistence, and the 80 %
band not worse than the best volatility baseline's (interval score), before the champion is
even compared. A champion that exists but cannot be scored on those windows (another lookback,
feature set or horizon) is its own decision: kept, never silently replaced as if there were no
production model, unless the caller says to replace it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PromotionDecision:
    """Whether to move `production` to the challenger, and why, in words."""

    promote: bool
    reason: str
    challenger_mape: float
    champion_mape: float | None
    naive_mape: float
    challenger_interval: float | None = None
    baseline_interval: float | None = None
    champion_incompatible: str | None = None  # why the champion could not be scored, if so
    # One word for the version tag: promoted, rejected, or kept_incompatible_champion.
    outcome: str = ""


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def decide_promotion(
    challenger_mape: float | None,
    champion_mape: float | None,
    naive_mape: float,
    min_improvement: float = 0.0,
    naive_tolerance: float = 1.0,
    *,
    challenger_interval: float | None = None,
    baseline_interval: float | None = None,
    baseline_name: str = "the best volatility baseline",
    interval_tolerance: float = 1.0,
    champion_incompatible: str | None = None,
    replace_incompatible_champion: bool = False,
) -> PromotionDecision:
    """Promote only if the challenger is strictly better than the champion by more than
    `min_improvement` (a fraction: 0.02 = 2 % lower MAPE), or there is no (valid) champion, AND
    its MAPE is <= naive_mape x naive_tolerance, AND (when a baseline interval score is given)
    its 80 % interval score is <= the baseline's x interval_tolerance. A missing or NaN challenger never promotes.
    `champion_incompatible` (why a production model exists but cannot be scored; its MAPE is
    then None) blocks the promotion unless `replace_incompatible_champion`."""

    def decision(promote: bool, reason: str, outcome: str | None = None) -> PromotionDecision:
        challenger = float("nan") if challenger_mape is None else float(challenger_mape)
        outcome = outcome or ("promoted" if promote else "rejected")
        return PromotionDecision(promote, reason, challenger, champion_mape, float(naive_mape),
                                 challenger_interval, baseline_interval, champion_incompatible,
                                 outcome)

    if _missing(challenger_mape):
        return decision(False, "challenger has no valid MAPE; keeping production as it is")
    naive_limit = naive_mape * naive_tolerance if not _missing(naive_mape) else float("nan")
    if _missing(naive_limit):
        return decision(False, "naive persistence MAPE is unavailable; cannot check the challenger")
    if challenger_mape > naive_limit:
        return decision(
            False,
            f"challenger MAPE {challenger_mape:.4f}% is worse than naive persistence "
            f"{naive_mape:.4f}% (limit {naive_limit:.4f}%)",
        )
    if not _missing(baseline_interval):
        if _missing(challenger_interval):
            return decision(False, "challenger has no valid interval score; keeping production")
        if challenger_interval > baseline_interval * interval_tolerance:
            limit = f" x {interval_tolerance:g}" if interval_tolerance != 1.0 else ""
            return decision(
                False,
                f"challenger's 80 % interval score {challenger_interval:.5f} is worse than "
                f"{baseline_name}'s {baseline_interval:.5f}{limit}",
            )
    if champion_incompatible is not None:
        unscorable = (
            f"production cannot be scored on the challenger's test windows "
            f"({champion_incompatible})"
        )
        if not replace_incompatible_champion:
            return decision(
                False,
                f"{unscorable}; keeping it (set replace_incompatible_champion to replace it)",
                "kept_incompatible_champion",
            )
        return decision(
            True,
            f"{unscorable}; replacing it as configured (replace_incompatible_champion); "
            f"challenger MAPE {challenger_mape:.4f}% is within naive persistence's "
            f"{naive_mape:.4f}%",
        )
    if _missing(champion_mape):
        reason = "no production model yet" if champion_mape is None else "production has no valid MAPE"
        return decision(
            True,
            f"{reason}; challenger MAPE {challenger_mape:.4f}% is within naive "
            f"persistence's {naive_mape:.4f}%",
        )
    required = champion_mape * (1.0 - min_improvement)
    if challenger_mape < required:
        return decision(
            True,
            f"challenger MAPE {challenger_mape:.4f}% beats production {champion_mape:.4f}% "
            f"and naive persistence {naive_mape:.4f}%",
        )
    needed = f" by {min_improvement:.1%}" if min_improvement else ""
    return decision(
        False,
        f"challenger MAPE {challenger_mape:.4f}% does not beat production "
        f"{champion_mape:.4f}%{needed}",
    )
