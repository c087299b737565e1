"""Proper scores of probabilistic forecasts: coverage, pinball, interval (Winkler) and Brier.

Why `scoringrules`: the formulas are easy to get subtly wrong (the 2/alpha penalty, the pinball
asymmetry), and a kept library is what a reviewer trusts. Prices are scored as fractions of the
actual close, so scores of a $20 and a $500 stock average meaningfully. The same functions score
a model's test windows (modeling), the volatility baselines, and the live performance log.
"""

from __future__ import annotations

import numpy as np

from stock_assets.quantiles import INTERVALS, QUANTILE_COLUMNS, QUANTILES

_BACKEND = "numpy"  # numba is not a dependency; numpy is exact and fast enough here


def covered(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """True where the actual value lies inside [lower, upper]."""
    actual = np.asarray(actual, dtype=np.float64)
    return (actual >= np.asarray(lower)) & (actual <= np.asarray(upper))


def interval_score(actual, lower, upper, nominal: int) -> np.ndarray:
    """Winkler score of the central `nominal` % interval, as a fraction of the actual value."""
    import scoringrules as sr

    actual = np.asarray(actual, dtype=np.float64)
    alpha = 1.0 - nominal / 100.0
    score = sr.interval_score(actual, np.asarray(lower, float), np.asarray(upper, float), alpha,
                              backend=_BACKEND)
    return np.asarray(score, dtype=np.float64) / np.abs(actual)


def pinball(actual, quantile_values) -> np.ndarray:
    """Mean pinball (quantile) loss over QUANTILES, as a fraction of the actual value;
    quantile_values has QUANTILES as its last axis."""
    import scoringrules as sr

    actual = np.asarray(actual, dtype=np.float64)
    values = np.asarray(quantile_values, dtype=np.float64)
    losses = [
        np.asarray(sr.quantile_score(actual, values[..., i], q, backend=_BACKEND), dtype=np.float64)
        for i, q in enumerate(QUANTILES)
    ]
    return np.mean(losses, axis=0) / np.abs(actual)


def brier(probability, outcome) -> np.ndarray:
    """(p - outcome)^2 per forecast, outcome 1 when the event happened."""
    import scoringrules as sr

    return np.asarray(
        sr.brier_score(np.asarray(outcome, dtype=np.float64), np.asarray(probability, float),
                       backend=_BACKEND),
        dtype=np.float64,
    )


def directional_call(predicted_close, last_close, band: float) -> np.ndarray:
    """A forecast calls a direction only when its move leaves the no-call band (a fraction of
    the last close): a flat forecast (persistence) makes no call at all."""
    move = np.asarray(predicted_close, dtype=np.float64) / np.asarray(last_close, float) - 1.0
    return np.abs(move) > band


def window_scores(
    actual: np.ndarray,
    quantile_closes: np.ndarray,
    p_up: np.ndarray,
    last_close: np.ndarray,
    step: int,
) -> dict[str, float]:
    """Averages over windows at one horizon step (0-based): coverage of each interval, Winkler of
    the 80 and 90 % intervals, pinball, Brier of p_up. actual (n, H), quantile_closes (n, H, Q)."""
    index = {column: i for i, column in enumerate(QUANTILE_COLUMNS)}
    y = np.asarray(actual, dtype=np.float64)[:, step]
    q = np.asarray(quantile_closes, dtype=np.float64)[:, step, :]
    up = (y > np.asarray(last_close, dtype=np.float64)).astype(np.float64)
    scores: dict[str, float] = {}
    for nominal, (low, high) in INTERVALS.items():
        lower, upper = q[:, index[low]], q[:, index[high]]
        scores[f"coverage_{nominal}"] = float(np.mean(covered(y, lower, upper)))
        if nominal in (80, 90):
            scores[f"winkler_{nominal}"] = float(np.mean(interval_score(y, lower, upper, nominal)))
    scores["pinball"] = float(np.mean(pinball(y, q)))
    scores["brier"] = float(np.mean(brier(np.asarray(p_up)[:, step], up)))
    return scores

