"""Forecast distributions: the quantiles of the next H closes, for models and baselines alike.

Why: daily price moves are close to noise, so the point forecast of a close hardly beats "no
change"; volatility, though, is forecastable, and a user sizing a position needs the range. A
model's distribution is its network's median log return plus a spread model fitted on the training
part only:

- the spread is a log-linear volatility regression (HAR-style) of each horizon's |log return| on
  the ticker's point-in-time EWMA, 20-session and one-year volatilities;
- the shape is the empirical quantiles of the training part's returns standardised by that spread
  (filtered historical simulation), so fat tails come from the data, not from a Gaussian.

Everything is fitted on rows before the windows it is scored on (the caller passes the training
part), and every volatility here at date t reads returns up to t only. The three baselines every
model is judged beside use the same quantile levels: a random walk with Gaussian bands from the
trailing one-year volatility, a random walk with RiskMetrics EWMA volatility (lambda 0.94), and
GARCH(1,1) with Student-t errors (the `arch` library).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from stock_assets.features.volatility import (
    EWMA_LAMBDA,
    TRAILING_SESSIONS,
    ewma_volatility,
    log_returns,
    rolling_volatility,
    volatility_features,
)
from stock_assets.quantiles import INTERVALS, QUANTILE_COLUMNS, QUANTILES

VOL_BASELINES: tuple[str, ...] = ("rw_trailing", "rw_ewma", "garch_t")
# Percentile grid of the standardised returns kept per horizon (for p_up and the quantiles).
_GRID = np.linspace(0.005, 0.995, 199)
# Below this many training windows nothing is regressed: the scale is the EWMA volatility x
# sqrt(h) (five collinear log-volatilities on a few dozen windows extrapolate wildly, and even
# one slope came out negative on 58), and only the standardised quantiles are fitted.
FULL_FIT_WINDOWS = 500
CLIP_MARGIN = float(np.log(1.5))


# --- the model's spread -----------------------------------------------------------------------


@dataclass
class SpreadModel:
    """Per horizon step: volatility-regression coefficients and the percentile grid of
    standardised returns (plain lists: stored as JSON beside the network)."""

    coefficients: list[list[float]]  # (horizon, N_VOL_FEATURES)
    z_grid: list[list[float]]  # (horizon, len(_GRID)), sorted
    fitted_until: str  # the last date whose return the fit read (ISO)
    n_windows: int
    # the log-scale the fit saw, per step: predictions are clipped to it (widened by
    # CLIP_MARGIN), so a regime beyond the training data never extrapolates the band to absurdity
    log_sigma_range: list[list[float]] | None = None

    @property
    def horizon(self) -> int:
        return len(self.coefficients)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SpreadModel:
        return cls(**values)

    def sigma(self, features: np.ndarray) -> np.ndarray:
        """(windows, horizon) predicted scale of each step's log return."""
        beta = np.asarray(self.coefficients, dtype=np.float64)
        features = np.asarray(features, dtype=np.float64)
        # an explicit row-wise sum, not a BLAS matmul: a window's band must not depend on how many
        # windows are forecast together (a back-test must equal the daily runs bit for bit)
        log_sigma = (features[:, None, :] * beta[None, :, :]).sum(axis=-1)
        if self.log_sigma_range is not None:
            bounds = np.asarray(self.log_sigma_range, dtype=np.float64)
            log_sigma = np.clip(log_sigma, bounds[:, 0] - CLIP_MARGIN, bounds[:, 1] + CLIP_MARGIN)
        return np.exp(log_sigma)

    def quantiles(self, median_returns: np.ndarray, features: np.ndarray) -> np.ndarray:
        """(windows, horizon, len(QUANTILES)) log-return quantiles centred on the network's
        median: median + sigma x (z_q - z_median)."""
        sigma = self.sigma(features)
        z = np.asarray(self.z_grid, dtype=np.float64)
        offsets = np.stack(
            [np.interp(QUANTILES, _GRID, row) - np.interp(0.5, _GRID, row) for row in z]
        )  # (horizon, quantiles)
        return np.asarray(median_returns)[:, :, None] + sigma[:, :, None] * offsets[None, :, :]

    def p_up(self, median_returns: np.ndarray, features: np.ndarray) -> np.ndarray:
        """(windows, horizon) probability that the step's close ends above the last close."""
        sigma = self.sigma(features)
        z = np.asarray(self.z_grid, dtype=np.float64)
        median = np.asarray(median_returns, dtype=np.float64)
        out = np.empty_like(median)
        for step, row in enumerate(z):
            threshold = np.interp(0.5, _GRID, row) - median[:, step] / sigma[:, step]
            cdf = np.interp(threshold, row, _GRID, left=0.0, right=1.0)
            out[:, step] = 1.0 - cdf
        return np.clip(out, 0.0, 1.0)


def fit_spread_model(
    targets: np.ndarray, features: np.ndarray, fitted_until: str, ridge: float = 1e-6
) -> SpreadModel:
    """Fit on TRAINING windows only: targets (windows, horizon) log returns, features (windows, N)
    at each window's anchor. log|y| ~ features by least squares gives the scale up to a constant;
    the standardised returns' quantiles absorb that constant (and give the shape)."""
    y = np.asarray(targets, dtype=np.float64)
    X = np.asarray(features, dtype=np.float64)
    if len(y) < 30:
        raise ValueError(f"{len(y)} training windows are too few to fit a spread model (need 30)")
    coefficients, grids, ranges = [], [], []
    gram = X.T @ X + ridge * np.eye(X.shape[1])
    for step in range(y.shape[1]):
        magnitude = np.log(np.abs(y[:, step]) + 1e-5)
        if len(y) >= FULL_FIT_WINDOWS:
            beta = np.linalg.solve(gram, X.T @ magnitude)
        else:
            beta = np.zeros(X.shape[1])
            beta[0], beta[1] = 0.5 * np.log(step + 1.0), 1.0
        log_sigma = X @ beta
        z = y[:, step] / np.exp(log_sigma)
        coefficients.append(beta.tolist())
        grids.append(np.quantile(z, _GRID).tolist())
        ranges.append([float(log_sigma.min()), float(log_sigma.max())])
    return SpreadModel(coefficients, grids, fitted_until, int(len(y)), ranges)


# --- the baselines ----------------------------------------------------------------------------


def gaussian_quantiles(sigma_daily: np.ndarray, horizon: int) -> np.ndarray:
    """(windows, horizon, quantiles) of a zero-drift random walk: sigma x sqrt(h) x z_q."""
    steps = np.sqrt(np.arange(1, horizon + 1, dtype=np.float64))
    z = stats.norm.ppf(QUANTILES)
    return np.asarray(sigma_daily)[:, None, None] * steps[None, :, None] * z[None, None, :]


def garch_t_quantiles(
    returns: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int
) -> np.ndarray:
    """GARCH(1,1)-t fitted on returns[1 : fit_end + 1] only, then forecast from each origin (a
    row index; its variance filter reads returns up to the origin, with the fitted parameters) for
    1..horizon steps: (origins, horizon, quantiles) of the cumulative log return, zero mean."""
    from arch import arch_model

    r = 100.0 * np.asarray(returns[1:], dtype=np.float64)  # returns[0] is not a return
    model = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False)
    result = model.fit(disp="off", last_obs=fit_end, show_warning=False)
    first = int(np.min(origins)) - 1
    forecast = result.forecast(horizon=horizon, start=max(first, 0), reindex=False)
    variance = forecast.variance.to_numpy() / 1e4  # (origins from `first`, horizon), daily
    rows = np.asarray(origins) - 1 - max(first, 0)
    cumulative = np.cumsum(variance[rows], axis=1)
    nu = float(result.params["nu"])
    z = stats.t.ppf(QUANTILES, nu) * np.sqrt((nu - 2.0) / nu)
    return np.sqrt(cumulative)[:, :, None] * z[None, None, :]


def baseline_quantiles(
    close: np.ndarray, anchors: np.ndarray, horizon: int, fit_end: int
) -> dict[str, np.ndarray]:
    """Each volatility baseline's (windows, horizon, quantiles) log returns at the anchors (row
    indices into `close`); GARCH is fitted on rows up to `fit_end` only."""
    returns = log_returns(close)
    anchors = np.asarray(anchors)
    return {
        "rw_trailing": gaussian_quantiles(
            rolling_volatility(returns, TRAILING_SESSIONS)[anchors], horizon
        ),
        "rw_ewma": gaussian_quantiles(ewma_volatility(returns)[anchors], horizon),
        "garch_t": garch_t_quantiles(returns, fit_end, anchors, horizon),
    }


def baseline_p_up(quantile_returns: np.ndarray) -> np.ndarray:
    """A zero-median band says nothing about direction: p_up 0.5."""
    return np.full(quantile_returns.shape[:2], 0.5)


def to_closes(last_close: np.ndarray, quantile_returns: np.ndarray) -> np.ndarray:
    """Quantile log returns -> closes, sorted along the quantile axis (monotone in q)."""
    closes = np.asarray(last_close, dtype=np.float64)[:, None, None] * np.exp(quantile_returns)
    return np.sort(closes, axis=-1)


__all__ = [
    "EWMA_LAMBDA",
    "INTERVALS",
    "QUANTILES",
    "QUANTILE_COLUMNS",
    "SpreadModel",
    "VOL_BASELINES",
    "baseline_p_up",
    "baseline_quantiles",
    "ewma_volatility",
    "fit_spread_model",
    "gaussian_quantiles",
    "garch_t_quantiles",
    "log_returns",
    "rolling_volatility",
    "to_closes",
    "volatility_features",
]
