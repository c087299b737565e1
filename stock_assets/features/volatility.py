"""Point-in-time volatilities of a close series: the inputs of every spread model and baseline.

Each value at row t reads returns up to t only, so a window anchored at t never sees its future;
the datasets stage stores them beside the windows and the modeling stage regresses on them.
"""

from __future__ import annotations

import numpy as np

EWMA_LAMBDA = 0.94
TRAILING_SESSIONS = 252
SHORT_SESSIONS = 20
_FLOOR = 1e-6  # a volatility never reaches zero (a flat stretch of prices)
N_VOL_FEATURES = 5


def log_returns(close: np.ndarray) -> np.ndarray:
    """r[t] = log(close[t] / close[t-1]); r[0] = 0 (no earlier price)."""
    close = np.asarray(close, dtype=np.float64)
    returns = np.zeros_like(close)
    returns[1:] = np.diff(np.log(close))
    return returns


def ewma_volatility(
    returns: np.ndarray, lam: float = EWMA_LAMBDA, seed: int = SHORT_SESSIONS
) -> np.ndarray:
    """RiskMetrics: sigma[t]^2 = lam sigma[t-1]^2 + (1 - lam) r[t]^2, the forecast for t+1 made at
    t's close, seeded with the mean square of the first `seed` returns (those rows only)."""
    r2 = np.asarray(returns, dtype=np.float64) ** 2
    var = np.empty_like(r2)
    if not len(r2):
        return var
    level = float(np.mean(r2[1 : seed + 1])) if len(r2) > 1 else 0.0
    for t, value in enumerate(r2):
        level = lam * level + (1.0 - lam) * value if t else level
        var[t] = level
    return np.maximum(np.sqrt(var), _FLOOR)


def rolling_volatility(
    returns: np.ndarray, window: int, min_periods: int = SHORT_SESSIONS
) -> np.ndarray:
    """Standard deviation of the last `window` returns up to t (fewer early on, at least
    `min_periods`; before that, the earliest value)."""
    r = np.asarray(returns, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(r)])
    csum2 = np.concatenate([[0.0], np.cumsum(r * r)])
    t = np.arange(len(r))
    start = np.maximum(0, t - window + 1)
    n = (t - start + 1).astype(np.float64)
    mean = (csum[t + 1] - csum[start]) / n
    var = (csum2[t + 1] - csum2[start]) / n - mean**2
    sigma = np.sqrt(np.maximum(var * n / np.maximum(n - 1, 1), 0.0))
    if len(r) > min_periods:
        sigma[:min_periods] = sigma[min_periods]
    return np.maximum(sigma, _FLOOR)


def volatility_features(close: np.ndarray, atr_to_close: np.ndarray) -> np.ndarray:
    """(rows, N_VOL_FEATURES): 1, log EWMA, log 20-session and log one-year close-to-close
    volatility, and log ATR(14) / close (the high-low range carries volatility that closes
    alone miss), each at its row's close."""
    returns = log_returns(close)
    atr = np.asarray(atr_to_close, dtype=np.float64)
    atr = np.where(np.isfinite(atr) & (atr > 0), atr, 0.01)  # no range data: a constant
    columns = [
        np.ones(len(returns)),
        np.log(ewma_volatility(returns)),
        np.log(rolling_volatility(returns, SHORT_SESSIONS)),
        np.log(rolling_volatility(returns, TRAILING_SESSIONS)),
        np.log(atr),
    ]
    return np.stack(columns, axis=1)
