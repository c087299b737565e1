"""The spread model and the volatility baselines on crafted and simulated returns."""

from __future__ import annotations

import numpy as np
import pytest

from stock_assets.modeling import uncertainty as u
from stock_assets.modeling.scores import covered, interval_score
from stock_assets.quantiles import QUANTILES


def garch_path(n: int, seed: int = 0) -> np.ndarray:
    """Closes of a GARCH(1,1) market: volatility clusters, so bands that track it win."""
    rng = np.random.default_rng(seed)
    var, returns = 1e-4, np.zeros(n)
    for t in range(1, n):
        var = 2e-6 + 0.08 * returns[t - 1] ** 2 + 0.9 * var
        returns[t] = np.sqrt(var) * rng.standard_t(6) * np.sqrt(4 / 6)
    return 100 * np.exp(np.cumsum(returns))


def test_ewma_and_rolling_volatility_read_only_the_past():
    close = garch_path(600)
    r = u.log_returns(close)
    poisoned = close.copy()
    poisoned[400:] *= np.linspace(1, 3, 200)
    for series in (u.ewma_volatility, lambda x: u.rolling_volatility(x, 252)):
        clean, dirty = series(r), series(u.log_returns(poisoned))
        assert np.array_equal(clean[:400], dirty[:400])
        assert not np.allclose(clean[400:], dirty[400:])
    np.testing.assert_allclose(u.rolling_volatility(r, 20)[100], r[81:101].std(ddof=1))


def test_spread_quantiles_are_monotone_calibrated_and_beat_a_static_band():
    close = garch_path(4000)
    atr = np.full(len(close), 0.01)  # no range information: the close-to-close features decide
    features = u.volatility_features(close, atr)
    horizon, log_close = 5, np.log(close)
    anchors = np.arange(300, len(close) - horizon)
    y = log_close[anchors[:, None] + np.arange(1, horizon + 1)] - log_close[anchors][:, None]
    train, test = anchors < 3000, anchors >= 3000
    spread = u.fit_spread_model(y[train], features[anchors[train]], "2020-01-01")
    quantiles = spread.quantiles(np.zeros((test.sum(), horizon)), features[anchors[test]])
    assert np.all(np.diff(quantiles, axis=-1) > 0)
    lo, hi = QUANTILES.index(0.10), QUANTILES.index(0.90)
    coverage = covered(y[test][:, -1], quantiles[:, -1, lo], quantiles[:, -1, hi]).mean()
    assert 0.72 < coverage < 0.88
    static = u.gaussian_quantiles(u.rolling_volatility(u.log_returns(close), 2000)[anchors[test]],
                                  horizon)
    ours = interval_score(np.exp(y[test][:, -1]), np.exp(quantiles[:, -1, lo]),
                          np.exp(quantiles[:, -1, hi]), 80).mean()
    theirs = interval_score(np.exp(y[test][:, -1]), np.exp(static[:, -1, lo]),
                            np.exp(static[:, -1, hi]), 80).mean()
    assert ours < theirs
    assert spread.p_up(np.zeros((1, horizon)), features[anchors[test][:1]])[0] == pytest.approx(
        0.5, abs=0.02)
    restored = u.SpreadModel.from_dict(spread.to_dict())
    assert np.array_equal(restored.sigma(features[:3]), spread.sigma(features[:3]))


def test_garch_t_is_fitted_on_the_training_rows_only():
    close = garch_path(1500)
    r = u.log_returns(close)
    origins = np.arange(1200, 1300)
    clean = u.garch_t_quantiles(r, 1000, origins, 5)
    poisoned = r.copy()
    poisoned[1001:1100] *= 0.2  # after the fit, before the origins: it moves the filter only
    moved = u.garch_t_quantiles(poisoned, 1000, origins, 5)
    assert clean.shape == (100, 5, len(QUANTILES)) and np.all(np.diff(clean, axis=-1) > 0)
    assert not np.allclose(clean, moved)
    later = r.copy()
    later[1300:] *= 10  # after every origin: nothing changes
    np.testing.assert_allclose(u.garch_t_quantiles(later, 1000, origins, 5), clean)


def test_a_spread_model_of_few_windows_scales_by_ewma_and_never_extrapolates():
    close = garch_path(400, seed=3)
    features = u.volatility_features(close, np.full(len(close), 0.01))
    log_close = np.log(close)
    anchors = np.arange(300, 360)  # 60 training windows: too few to regress on
    y = log_close[anchors[:, None] + np.arange(1, 6)] - log_close[anchors][:, None]
    spread = u.fit_spread_model(y, features[anchors], "2020-01-01")
    beta = np.asarray(spread.coefficients)
    np.testing.assert_allclose(beta[:, 1], 1.0)  # sigma = EWMA x sqrt(h) x a fitted quantile
    np.testing.assert_allclose(beta[:, 2:], 0.0)
    calm, wild = features[anchors[:1]].copy(), features[anchors[:1]].copy()
    wild[:, 1:] += 10.0  # a volatility e^10 times any seen in training
    ratio = spread.sigma(wild) / spread.sigma(calm)
    assert np.all(ratio <= 1.5 * np.exp(np.ptp(np.asarray(spread.log_sigma_range), axis=1)) + 1e-9)
