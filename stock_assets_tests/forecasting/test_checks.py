"""The forecast checks' verdicts and the drift measurement, on crafted numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from stock_assets.forecasting.checks import (
    ModelTestMetrics,
    evaluate_forecast_mape,
    run_drift_check,
)
from stock_assets.forecasting.drift import measure_drift, prune_reports
from stock_assets.forecasting.performance import RollingMetrics
from stock_assets.monitoring_settings import MonitoringSettings

DAY = date(2024, 6, 28)
SETTINGS = MonitoringSettings()


def rolling(mape: float | None, naive: float | None, n: int) -> RollingMetrics:
    return RollingMetrics(mape, naive, 0.5 if mape is not None else None, n, date(2024, 5, 31), DAY)


@pytest.mark.parametrize(
    ("mape", "naive", "passed", "says"),
    [
        (0.020, 0.021, True, "MAPE 2.00% within 5.00%"),
        (0.060, 0.058, False, "MAPE 6.00% > threshold 5.00%"),
        (0.030, 0.020, False, "MAPE 3.00% > naive 2.00% x 1.25"),  # 1.5x naive, under 5 %
        (0.024, 0.020, True, "within"),  # 1.2x naive: inside the 25 % margin
    ],
)
def test_forecast_mape_judges_live_rolling_mape_against_threshold_and_naive(
    mape, naive, passed, says
):
    outcome = evaluate_forecast_mape(rolling(mape, naive, 40), SETTINGS)
    assert outcome.passed is passed
    assert says in outcome.description
    assert outcome.metadata["evidence"] == "live: 40 matured forecasts"
    assert outcome.metadata["mape_threshold"] == 0.05 and outcome.metadata["naive_margin"] == 0.25
    assert outcome.metadata["rolling_n"] == 40


def test_before_enough_forecasts_matured_the_models_test_mape_stands_in():
    fallback = ModelTestMetrics("3", mape=0.071, naive_mape=0.07)
    outcome = evaluate_forecast_mape(rolling(0.01, 0.01, 4), SETTINGS, fallback)
    assert not outcome.passed
    assert outcome.metadata["mape"] == 0.071
    assert outcome.metadata["evidence"] == "model v3 test windows (4 matured forecasts < 5)"
    # Without any evidence there is nothing to fail on.
    empty = evaluate_forecast_mape(rolling(None, None, 0), SETTINGS, None)
    assert empty.passed and empty.metadata["evidence"] == "none"


def test_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("STOCK_ASSETS_MAPE_THRESHOLD", "0.000001")
    monkeypatch.setenv("STOCK_ASSETS_RETRAIN_COOLDOWN_HOURS", "0.5")
    monkeypatch.setenv("STOCK_ASSETS_RETRAIN_EPOCHS", "2")
    monkeypatch.delenv("STOCK_ASSETS_RETRAIN_NAIVE_TOLERANCE", raising=False)
    settings = MonitoringSettings.from_env()
    assert settings.mape_threshold == 1e-6 and settings.retrain_cooldown.total_seconds() == 1800
    assert settings.retrain_epochs == 2 and settings.drift_threshold == 0.5
    assert settings.retrain_naive_tolerance is None  # unset: the model config's
    outcome = evaluate_forecast_mape(rolling(0.002, 0.002, 50), settings)
    assert not outcome.passed and outcome.metadata["mape_threshold"] == 1e-6
    monkeypatch.setenv("STOCK_ASSETS_DRIFT_THRESHOLD", "lots")
    with pytest.raises(ValueError, match="STOCK_ASSETS_DRIFT_THRESHOLD='lots' is not a number"):
        MonitoringSettings.from_env()


def frames(
    shift: float, columns: int = 10, moved: int = 6, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    reference = pl.DataFrame({f"f{i}": rng.normal(size=400) for i in range(columns)})
    current = pl.DataFrame(
        {f"f{i}": rng.normal(loc=shift if i < moved else 0.0, size=20) for i in range(columns)}
    )
    return reference, current


def test_drift_share_counts_features_moved_beyond_the_column_threshold():
    reference, current = frames(shift=4.0)
    result = measure_drift(reference, current, reference.columns, column_threshold=1.5)
    assert result.drift_share == pytest.approx(0.6)
    assert result.drifted_columns == tuple(f"f{i}" for i in range(6))
    assert all(result.column_scores[f"f{i}"] > 3.0 for i in range(6))
    assert all(result.column_scores[f"f{i}"] < 1.0 for i in range(6, 10))
    calm = measure_drift(*frames(shift=0.0), reference.columns, column_threshold=1.5)
    assert calm.drift_share == 0.0
    # A feature constant in the training window cannot be measured in its units: left out.
    constant = reference.with_columns(pl.lit(0.0).alias("f9"))
    assert measure_drift(constant, current, constant.columns).n_columns == 9


def test_the_drift_check_keeps_its_html_report_and_fails_above_the_share(tmp_path: Path):
    reference, current = frames(shift=4.0)
    outcome = run_drift_check(
        reference=reference,
        current=current,
        columns=tuple(reference.columns),
        settings=SETTINGS,
        ticker="NVDA",
        as_of=DAY,
        reference_window=(date(2020, 1, 2), date(2023, 6, 30)),
        home=tmp_path,
    )
    assert not outcome.passed
    assert (
        outcome.metadata["drift_share"] == pytest.approx(0.6)
        and outcome.metadata["drifted"] is True
    )
    assert outcome.metadata["as_of_date"] == "2024-06-28"
    report = tmp_path / "lake" / "drift_reports" / "NVDA" / "2024-06-28.html"  # served by /drift
    assert report.is_file() and report.stat().st_size > 100_000
    assert outcome.metadata["report"].value == str(report)
    assert "6 of 10 features drifted (share 0.60, above threshold 0.5)" in outcome.description


def test_old_reports_are_pruned(tmp_path: Path):
    for day in ("2024-06-24", "2024-06-25", "2024-06-26", "2024-06-27"):
        (tmp_path / f"{day}.html").write_text(day)
    removed = prune_reports(tmp_path, keep=2)
    assert [p.name for p in removed] == ["2024-06-24.html", "2024-06-25.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-06-26.html", "2024-06-27.html"]


def _under_covering_log(n_days: int, band: float) -> RollingMetrics:
    """A crafted performance log: persistence forecasts with a +-band % 80 % interval, on prices
    alternating 100 / 102 (every 1-session move is ~2 %), scored by the real scoring code."""
    from stock_assets.forecasting.inference import forecast_rows
    from stock_assets.forecasting.performance import (
        TrainingWindow,
        rolling_metrics,
        score_matured,
    )
    from stock_assets.market_calendar import trading_sessions

    days = trading_sessions(date(2024, 1, 2), date(2024, 6, 28)).to_list()
    closes = {d: 100.0 + 2.0 * (i % 2) for i, d in enumerate(days)}
    multipliers = np.array([1 - band, 1 - band, 1 - band / 2, 1, 1 + band / 2, 1 + band, 1 + band])
    forecasts = pl.concat(
        forecast_rows(ticker="SYN", as_of=d, last_close=closes[d], log_returns=np.zeros(1),
                      model_name="m", model_version="1", created_at=DAY_TIME,
                      quantile_closes=closes[d] * multipliers[None, :], p_up=np.array([0.5]))
        for d in days[-n_days - 1 : -1]
    )
    prices = pl.DataFrame({"date": list(closes), "close": list(closes.values())})
    windows = {("m", "1"): TrainingWindow(date(2020, 1, 2), date(2023, 12, 29))}
    scored = score_matured(forecasts, prices, days[-1], windows)
    return rolling_metrics(scored, days[-n_days:], days[-1])


DAY_TIME = datetime(2024, 6, 28, tzinfo=UTC)


def test_interval_coverage_fails_on_an_under_covering_log_and_passes_a_calibrated_one():
    from stock_assets.forecasting.checks import evaluate_interval_coverage

    narrow = _under_covering_log(45, band=0.01)  # a 1 % band never holds a 2 % move
    assert narrow.n_scored == 45 and narrow.coverage_80 == pytest.approx(0.0)
    outcome = evaluate_interval_coverage(narrow, SETTINGS)
    assert not outcome.passed
    assert "80 % interval covered 0.00% of 45 matured forecasts, outside [70.00%, 90.00%]" in (
        outcome.description
    )
    wide = _under_covering_log(45, band=0.03)
    assert wide.coverage_80 == pytest.approx(1.0)
    assert not evaluate_interval_coverage(wide, SETTINGS).passed  # over-covering fails too
    few = _under_covering_log(30, band=0.01)
    assert evaluate_interval_coverage(few, SETTINGS).passed  # 30 < 40: nothing to judge yet
    calibrated = RollingMetrics(0.01, 0.01, None, 50, DAY, DAY, coverage_80=0.8, n_scored=50)
    assert evaluate_interval_coverage(calibrated, SETTINGS).passed


@pytest.mark.parametrize("shift", [0.0, 1.2, 4.0])
def test_the_screen_without_a_report_gives_evidentlys_own_scores_and_verdict(shift: float):
    reference, current = frames(shift=shift)
    full = measure_drift(reference, current, reference.columns, column_threshold=1.5)
    fast = measure_drift(reference, current, reference.columns, column_threshold=1.5, report=False)
    assert fast.report is None and full.report is not None
    assert fast.drift_share == pytest.approx(full.drift_share)
    assert fast.drifted_columns == full.drifted_columns
    assert fast.column_scores == pytest.approx(full.column_scores)


def test_a_big_panel_writes_reports_only_for_drifted_tickers(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("STOCK_ASSETS_DRIFT_REPORTS", raising=False)
    settings = MonitoringSettings.from_env()
    assert settings.drift_report_for(25) == "all" and settings.drift_report_for(26) == "drifted"
    monkeypatch.setenv("STOCK_ASSETS_DRIFT_REPORTS", "none")
    assert MonitoringSettings.from_env().drift_report_for(3) == "none"
    monkeypatch.setenv("STOCK_ASSETS_DRIFT_REPORTS", "some")
    with pytest.raises(ValueError, match="choose one of auto, all, drifted, none"):
        MonitoringSettings.from_env()
    for ticker, shift in (("CALM", 0.0), ("MOVED", 4.0)):
        reference, current = frames(shift=shift)
        outcome = run_drift_check(
            reference=reference, current=current, columns=tuple(reference.columns),
            settings=SETTINGS, ticker=ticker, as_of=DAY,
            reference_window=(date(2020, 1, 2), date(2023, 6, 30)), home=tmp_path,
            reports="drifted",
        )
        assert outcome.passed == (ticker == "CALM")
        report = tmp_path / "lake" / "drift_reports" / ticker / "2024-06-28.html"
        assert report.exists() == (ticker == "MOVED")
        assert ("report" in outcome.metadata) == (ticker == "MOVED")
