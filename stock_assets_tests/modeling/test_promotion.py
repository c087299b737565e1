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


@pytest.mark.parametrize(
    ("network_mape", "naive_mape", "tolerance", "broken", "falls_back"),
    [
        (2.01, 2.00, 1.0, False, True),  # worse than naive: shrunk to persistence
        (2.00, 2.00, 1.0, False, False),  # equal to naive passes the gate as it is
        (1.90, 2.00, 1.0, False, False),
        (2.05, 2.00, 1.1, False, False),  # within the configured tolerance
        (math.nan, 2.00, 1.0, False, False),  # no score: the checks must catch it, not a fallback
        (2.50, 2.00, 1.0, True, False),  # non-finite weights are never hidden behind persistence
    ],
)
def test_only_a_sound_network_worse_than_naive_falls_back_to_persistence(
    network_mape, naive_mape, tolerance, broken, falls_back
) -> None:
    import torch

    from stock_assets.modeling.networks import build_network
    from stock_assets.modeling.registration import falls_back_to_persistence

    network = build_network("lstm", n_features=3, horizon=5, hidden_size=4, num_layers=1, dropout=0.0)
    if broken:
        with torch.no_grad():
            next(network.parameters()).fill_(math.nan)
    decision = falls_back_to_persistence(
        network, {"mape_hH": network_mape}, {"mape_hH": naive_mape}, tolerance
    )
    assert decision is falls_back


def test_a_network_shrunk_to_persistence_forecasts_the_last_close() -> None:
    import numpy as np
    import torch

    from stock_assets.modeling.evaluation import reconstruct_prices
    from stock_assets.modeling.networks import build_network
    from stock_assets.modeling.training import predict_returns

    network = build_network("lstm", n_features=3, horizon=5, hidden_size=4, num_layers=1, dropout=0.0)
    network.skill_weight.fill_(0.0)
    windows = torch.randn(4, 10, 3).numpy()
    anchors = np.array([10.0, 20.0, 30.0, 40.0])
    assert np.array_equal(reconstruct_prices(anchors, predict_returns(network, windows)),
                          np.repeat(anchors.reshape(-1, 1), 5, axis=1))


def test_a_challenger_whose_80_percent_band_is_worse_than_the_ewma_band_is_rejected() -> None:
    # better than naive on the point forecast, and no champion: only the band can stop it
    worse = decide_promotion(1.0, None, 1.1, challenger_interval=0.201, baseline_interval=0.200,
                             baseline_name="rw_ewma")
    assert not worse.promote
    assert "80 % interval score 0.20100 is worse than rw_ewma's 0.20000" in worse.reason
    assert decide_promotion(1.0, None, 1.1, challenger_interval=0.199,
                            baseline_interval=0.200).promote
    # the band gate comes before the champion: a challenger beating production still needs it
    assert not decide_promotion(1.0, 1.5, 1.1, challenger_interval=0.3,
                                baseline_interval=0.2).promote
    assert not decide_promotion(1.0, None, 1.1, challenger_interval=float("nan"),
                                baseline_interval=0.2).promote
    assert decide_promotion(1.0, None, 1.1, challenger_interval=0.3, baseline_interval=0.2,
                            interval_tolerance=2.0).promote


# --- a champion that exists but cannot be scored on the challenger's windows ----------------------

WHY = "v3: lookback 30 vs 20 sessions"


def test_an_incompatible_champion_is_kept_not_treated_as_absent() -> None:
    # Before issue #15 this promoted with "no production model yet".
    decision = decide_promotion(1.90, None, 2.10, champion_incompatible=WHY)
    assert decision.promote is False
    assert decision.outcome == "kept_incompatible_champion"
    assert decision.champion_incompatible == WHY
    assert decision.reason == (
        "production cannot be scored on the challenger's test windows (v3: lookback 30 vs 20 "
        "sessions); keeping it (set replace_incompatible_champion to replace it)"
    )
    assert "no production model" not in decision.reason


def test_replace_incompatible_champion_promotes_a_challenger_that_passes_its_own_gates() -> None:
    decision = decide_promotion(
        1.90, None, 2.10, champion_incompatible=WHY, replace_incompatible_champion=True
    )
    assert (decision.promote, decision.outcome) == (True, "promoted")
    assert decision.reason.startswith(
        "production cannot be scored on the challenger's test windows (v3: lookback 30 vs 20 "
        "sessions); replacing it as configured"
    )
    assert "1.9000%" in decision.reason and "2.1000%" in decision.reason
    # Replacing is no pass on the challenger's own gates: worse than naive still never promotes.
    worse = decide_promotion(
        2.20, None, 2.10, champion_incompatible=WHY, replace_incompatible_champion=True
    )
    assert (worse.promote, worse.outcome) == (False, "rejected")
    assert "worse than naive persistence" in worse.reason
    band = decide_promotion(
        1.90, None, 2.10, challenger_interval=0.06, baseline_interval=0.05,
        champion_incompatible=WHY, replace_incompatible_champion=True,
    )  # fmt: skip
    assert not band.promote and "interval score" in band.reason


def test_outcomes_of_the_ordinary_gate_are_promoted_or_rejected() -> None:
    assert decide_promotion(1.90, None, 2.10).outcome == "promoted"
    assert decide_promotion(2.05, 2.00, 2.10).outcome == "rejected"
    assert decide_promotion(1.90, 2.00, 2.10).champion_incompatible is None


def test_the_bundle_says_why_it_cannot_read_other_windows() -> None:
    from types import SimpleNamespace

    from stock_assets.modeling.artifacts import ModelBundle

    bundle = ModelBundle(
        ticker="AAPL", architecture="lstm", network_params={}, feature_names=["a", "b", "c"],
        context_length=30, horizon=5, scaler={}, train_start="2020-01-02", train_end="2023-01-03",
    )  # fmt: skip
    same = SimpleNamespace(feature_names=("a", "b", "c"), context_length=30, horizon=5)
    assert bundle.incompatibility(same) is None and bundle.compatible_with(same)
    other = SimpleNamespace(feature_names=("a", "b", "c", "d"), context_length=20, horizon=3)
    assert bundle.incompatibility(other) == (
        "3 features vs the windows' 4 (missing ['d']); lookback 30 vs 20 sessions; horizon 5 vs 3"
    )
    shuffled = SimpleNamespace(feature_names=("c", "b", "a"), context_length=30, horizon=5)
    assert bundle.incompatibility(shuffled) == "3 features vs the windows' 3 (another order)"
