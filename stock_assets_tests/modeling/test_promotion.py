"""The promotion gate on crafted scores."""

from __future__ import annotations

import math

import pytest

from stock_assets.modeling.promotion import PromotionDecision, decide_promotion


@pytest.mark.parametrize(
    ("challenger", "champion", "naive", "promote", "reason_part"),
    [
        (1.90, 2.00, 2.10, True, "beats production"),  # better than both
        (2.00, 2.00, 2.10, False, "does not beat production"),  # a tie is not better
        (2.05, 2.00, 2.10, False, "does not beat production"),  # worse than champion
        (1.90, 2.00, 1.80, False, "worse than naive"),  # beats champion, loses to naive
        (1.80, None, 1.80, True, "no production model yet"),  # equal to naive is allowed
        (1.81, None, 1.80, False, "worse than naive"),
        (math.nan, 2.00, 2.10, False, "no valid MAPE"),
        (None, None, 2.10, False, "no valid MAPE"),
        (1.90, math.nan, 2.10, True, "production has no valid MAPE"),
        (1.90, 2.00, math.nan, False, "naive persistence MAPE is unavailable"),
    ],
)
def test_gate(challenger, champion, naive, promote, reason_part) -> None:
    decision = decide_promotion(challenger, champion, naive)
    assert isinstance(decision, PromotionDecision)
    assert decision.promote is promote
    assert reason_part in decision.reason


def test_min_improvement_and_naive_tolerance() -> None:
    assert not decide_promotion(1.97, 2.00, 3.0, min_improvement=0.02).promote  # 1.5 % better
    assert decide_promotion(1.95, 2.00, 3.0, min_improvement=0.02).promote  # 2.5 % better
    assert decide_promotion(1.90, None, 1.80, naive_tolerance=1.06).promote
    assert not decide_promotion(1.92, None, 1.80, naive_tolerance=1.06).promote


def test_decision_carries_the_scores() -> None:
    decision = decide_promotion(1.5, 1.6, 1.7)
    assert (decision.challenger_mape, decision.champion_mape, decision.naive_mape) == (1.5, 1.6, 1.7)
    assert "1.5000%" in decision.reason and "1.6000%" in decision.reason
    nan_decision = decide_promotion(None, 1.6, 1.7)
    assert math.isnan(nan_decision.challenger_mape)
