"""The forecasting assets' checks: forecast_mape and interval_coverage (live error and band
calibration, on forecast_performance) and feature_drift (inputs moved away from the model's
training window, on daily_forecast), as pure evaluations.

forecast_mape is evaluated inside forecast_performance and feature_drift inside daily_forecast,
from what those assets already computed. Both assets are panels (one partition = one trading date,
every ticker's rows), so each check is judged per ticker and reported as ONE evaluation per date:
it fails when any ticker fails, and its metadata names the failing tickers (`failing_tickers`) and
holds every ticker's verdict and numbers (`results`), which is what the retraining sensor reads to
retrain only those tickers. The checks are non-blocking: a failing check does not stop the
forecasts, it is the retraining sensor's signal (monitoring/). The market index's own drift check
is monitoring's (monitoring/checks.py).
"""

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from stock_assets.contract import (
    DAILY_FORECAST,
    FEATURE_DRIFT,
    FORECAST_MAPE,
    FORECAST_PERFORMANCE,
    INTERVAL_COVERAGE,
    WATCHED_CHECKS,  # noqa: F401  (re-exported: the sensors import the check names here)
    mape_evidence,
    mape_problems,
)
from stock_assets.forecasting.drift import DriftResult, measure_drift
from stock_assets.forecasting.performance import RollingMetrics
from stock_assets.monitoring_settings import MonitoringSettings
from stock_assets.partitions import trading_date_partitions

FORECAST_MAPE_SPEC = dg.AssetCheckSpec(
    FORECAST_MAPE,
    asset=FORECAST_PERFORMANCE,
    description=(
        "Rolling MAPE of out-of-sample matured forecasts within the threshold and not worse "
        "than naive persistence by more than the margin (before enough forecasts matured: "
        "the model's test-window MAPE)."
    ),
    blocking=False,
    partitions_def=trading_date_partitions,
)
INTERVAL_COVERAGE_SPEC = dg.AssetCheckSpec(
    INTERVAL_COVERAGE,
    asset=FORECAST_PERFORMANCE,
    description=(
        "Rolling coverage of the 80 % interval of out-of-sample matured forecasts within "
        "[70 %, 90 %] once at least 40 of them matured: bands that are too narrow or too wide "
        "are a reason to retrain."
    ),
    blocking=False,
    partitions_def=trading_date_partitions,
)
FEATURE_DRIFT_SPEC = dg.AssetCheckSpec(
    FEATURE_DRIFT,
    asset=DAILY_FORECAST,
    description=(
        "Share of model features whose recent sessions drifted (Evidently, Wasserstein) from "
        "the forecasting model's training window, within the threshold."
    ),
    blocking=False,
    partitions_def=trading_date_partitions,
)


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict, in words and numbers, before it becomes a Dagster result."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_result(self, asset_key: str | dg.AssetKey, check_name: str) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            asset_key=dg.AssetKey.from_coercible(asset_key),
            check_name=check_name,
            passed=self.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=self.description,
            metadata=self.metadata,
        )


@dataclass(frozen=True)
class ModelTestMetrics:
    """A model version's MAPE and naive persistence's on its own test windows (fractions)."""

    version: str
    mape: float
    naive_mape: float


# Per-ticker numbers kept in a panel evaluation's `results` (the rest stays in the description).
_RESULT_FIELDS = (
    "mape", "naive_mape", "evidence", "rolling_n", "coverage_80", "n_scored", "drift_share",
    "drifted", "drifted_columns", "model_version", "report",
)


def _plain(value: Any) -> Any:
    value = getattr(value, "value", value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def panel_check_result(
    asset_key: str | dg.AssetKey,
    check_name: str,
    outcomes: dict[str, CheckOutcome],
    as_of: date,
    skipped: dict[str, str] | None = None,
) -> dg.AssetCheckResult:
    """One evaluation of a check over a panel date: fails when any ticker fails, names them.

    `results` holds {ticker: {passed, description, numbers}} for every judged ticker (the sensor
    and the agent report read it); with one ticker, its own metadata is kept at the top level too.
    """
    from stock_assets.metadata import markdown_table

    failing = sorted(t for t, o in outcomes.items() if not o.passed)
    results = {
        ticker: {
            "passed": outcome.passed,
            "description": outcome.description,
            **{k: _plain(outcome.metadata[k]) for k in _RESULT_FIELDS if k in outcome.metadata},
        }
        for ticker, outcome in sorted(outcomes.items())
    }
    metadata: dict[str, Any] = {}
    if len(outcomes) == 1:
        metadata.update(next(iter(outcomes.values())).metadata)
    metadata.update(
        {
            "as_of_date": as_of.isoformat(),
            "tickers_judged": len(outcomes),
            "tickers_failing": len(failing),
            "failing_tickers": dg.MetadataValue.json(failing),
            "results": dg.MetadataValue.json(results),
        }
    )
    if skipped:
        metadata["tickers_not_judged"] = dg.MetadataValue.json(skipped)
    if outcomes:
        ordered = failing + [t for t in sorted(outcomes) if t not in failing]
        table = pl.DataFrame(
            {
                "ticker": ordered[:50],
                "passed": [outcomes[t].passed for t in ordered[:50]],
                "verdict": [outcomes[t].description[:160] for t in ordered[:50]],
            }
        )
        metadata["verdicts"] = dg.MetadataValue.md(
            markdown_table(table) + ("\n\n(first 50; all in `results`)" if len(ordered) > 50 else "")
        )
    if len(outcomes) == 1:
        description = next(iter(outcomes.values())).description
    elif failing:
        description = (
            f"{len(failing)} of {len(outcomes)} tickers failed on {as_of}: "
            + ", ".join(failing[:20]) + (" ..." if len(failing) > 20 else "")
        )
    else:
        description = f"all {len(outcomes)} tickers pass on {as_of}."
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey.from_coercible(asset_key),
        check_name=check_name,
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.2f}%"


def evaluate_forecast_mape(
    rolling: RollingMetrics,
    settings: MonitoringSettings,
    fallback: ModelTestMetrics | None = None,
) -> CheckOutcome:
    """Pass when the MAPE is within the threshold and within naive x (1 + margin): the contract's
    rule (stock_assets.contract.rules), which GET /performance judges too.

    The evidence is the rolling MAPE once at least `min_matured` out-of-sample forecasts matured;
    before that, the forecasting model's test-window MAPE stands in (the best estimate of its
    error there is), and the metadata says which one was judged.
    """
    test = (fallback.mape, fallback.naive_mape) if fallback is not None else (None, None)
    judged = mape_evidence(rolling.n, rolling.mape, rolling.naive_mape, *test, settings.min_matured)
    mape, naive = judged.mape, judged.naive_mape
    if judged.kind == "live":
        evidence = f"live: {rolling.n} matured forecasts"
    elif judged.kind == "model_test" and fallback is not None:
        evidence = (
            f"model v{fallback.version} test windows ({rolling.n} matured forecasts < "
            f"{settings.min_matured})"
        )
    else:
        return CheckOutcome(
            True,
            f"Nothing to judge yet: {rolling.n} matured forecasts and no model test metrics.",
            {
                "evidence": "none",
                "rolling_n": rolling.n,
                **settings.as_metadata("mape_threshold", "naive_margin", "min_matured"),
            },
        )
    problems = mape_problems(mape, naive, settings.mape_threshold, settings.naive_margin)
    metadata: dict[str, Any] = {
        "mape": mape,
        "naive_mape": naive if naive is not None else float("nan"),
        "evidence": evidence,
        "mape_threshold": settings.mape_threshold,
        "naive_margin": settings.naive_margin,
        "min_matured": settings.min_matured,
        **rolling.as_metadata(),
    }
    if problems:
        return CheckOutcome(False, "; ".join(problems) + f" ({evidence}).", metadata)
    return CheckOutcome(
        True,
        f"MAPE {_percent(mape)} within {_percent(settings.mape_threshold)} and naive "
        f"{_percent(naive)} x {1 + settings.naive_margin:g} ({evidence}).",
        metadata,
    )


def evaluate_interval_coverage(rolling: RollingMetrics, settings: MonitoringSettings) -> CheckOutcome:
    """Pass unless at least `coverage_min_matured` banded forecasts matured and the 80 % band's
    rolling coverage left [coverage_low, coverage_high]."""
    metadata: dict[str, Any] = {
        "coverage_80": rolling.coverage_80 if rolling.coverage_80 is not None else float("nan"),
        "coverage_50": rolling.coverage_50 if rolling.coverage_50 is not None else float("nan"),
        "coverage_90": rolling.coverage_90 if rolling.coverage_90 is not None else float("nan"),
        "n_scored": rolling.n_scored,
        "rolling_window": f"{rolling.window_start}..{rolling.window_end}",
        **settings.as_metadata("coverage_low", "coverage_high", "coverage_min_matured"),
    }
    if rolling.n_scored < settings.coverage_min_matured or rolling.coverage_80 is None:
        return CheckOutcome(
            True,
            f"Nothing to judge yet: {rolling.n_scored} matured forecasts with bands "
            f"(< {settings.coverage_min_matured}).",
            metadata,
        )
    bounds = f"[{_percent(settings.coverage_low)}, {_percent(settings.coverage_high)}]"
    inside = settings.coverage_low <= rolling.coverage_80 <= settings.coverage_high
    verdict = "within" if inside else "outside"
    return CheckOutcome(
        inside,
        f"80 % interval covered {_percent(rolling.coverage_80)} of {rolling.n_scored} matured "
        f"forecasts, {verdict} {bounds}.",
        metadata,
    )


def evaluate_feature_drift(
    result: DriftResult,
    settings: MonitoringSettings,
    *,
    ticker: str,
    as_of: date,
    reference_window: tuple[date, date],
    report_path: Path | None,
) -> CheckOutcome:
    """Fail when more than `drift_threshold` of the features drifted."""
    drifted = result.drift_share > settings.drift_threshold
    metadata: dict[str, Any] = {
        "drift_share": result.drift_share,
        "drifted": drifted,
        "as_of_date": as_of.isoformat(),
        "ticker": ticker,
        "drifted_columns": dg.MetadataValue.text(", ".join(result.drifted_columns) or "none"),
        "n_features": result.n_columns,
        "reference_window": f"{reference_window[0]}..{reference_window[1]} ({result.n_reference} rows)",
        "current_window_rows": result.n_current,
        "drift_threshold": settings.drift_threshold,
        "column_threshold": settings.drift_column_threshold,
        "method": settings.drift_method,
    }
    if report_path is not None:
        metadata["report"] = dg.MetadataValue.path(str(report_path))
        metadata["report_url"] = dg.MetadataValue.url(report_path.resolve().as_uri())
        metadata["report_api"] = dg.MetadataValue.text(f"GET /drift/{ticker}?as_of={as_of}")
    verdict = "above" if drifted else "within"
    return CheckOutcome(
        not drifted,
        f"{ticker} on {as_of}: {len(result.drifted_columns)} of {result.n_columns} features "
        f"drifted (share {result.drift_share:.2f}, {verdict} threshold {settings.drift_threshold:g}).",
        metadata,
    )


def run_drift_check(
    *,
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: tuple[str, ...],
    settings: MonitoringSettings,
    ticker: str,
    as_of: date,
    reference_window: tuple[date, date],
    home: str | Path | None,
    reports: str = "all",
) -> CheckOutcome:
    """Measure drift, keep Evidently's HTML report in the lake (`reports`: "all", "drifted" or
    "none", see MonitoringSettings.drift_report_for), and judge it."""
    measure = lambda report: measure_drift(  # noqa: E731
        reference, current, columns, settings.drift_column_threshold, settings.drift_method,
        report=report,
    )
    result = measure(home is not None and reports == "all")
    if home is not None and reports == "drifted" and result.drift_share > settings.drift_threshold:
        result = measure(True)  # the same verdict, now with the report a person will open
    path = None
    if home is not None and result.report is not None:
        from stock_assets.forecasting.drift_reports import save_drift_report

        # In the lake, where GET /drift/{ticker} serves it; the newest `keep` per ticker stay.
        path = save_drift_report(
            result, Path(home) / "lake", ticker, as_of, keep=settings.drift_reports_keep
        )
    return evaluate_feature_drift(
        result,
        settings,
        ticker=ticker,
        as_of=as_of,
        reference_window=reference_window,
        report_path=path,
    )
