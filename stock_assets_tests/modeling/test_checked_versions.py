"""Only a version whose blocking checks passed forecasts; a registered model is an MLflow pyfunc.

One home (real Dagster instance, MLflow SQLite store, Feast, lake) with no child in production:
AAPL v1 passes its checks but not the gate (its interval tolerance is 0), AAPL v2 then fails
not_worse_than_naive (tolerance 0.5), MSFT's only version fails it too. Before issue #15 item 2
the latest version forecast whatever its checks said (AAPL from v2, MSFT from v1); now AAPL
forecasts from v1, MSFT gets no forecast, and the run and the API say why. The parent (promoted)
is loaded back as `models:/stock_assets.GSPC@production` and AAPL v1 as `models:/.../1`, and
their pyfunc predictions equal the asset path's forecasts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import numpy as np
import polars as pl
import pytest

from stock_assets.datasets.windows import MODEL_FEATURES, model_feature_frame
from stock_assets.forecasting.model_choice import SOURCE_CHECKED, resolve_forecast_model
from stock_assets.quantiles import P_UP, QUANTILE_COLUMNS
from stock_assets.testing import TINY_MODEL, LoopHome, failures, loop_home

LAST = date(2024, 6, 14)
AAPL, MSFT, PARENT = "stock_assets.AAPL", "stock_assets.MSFT", "stock_assets.GSPC"
COMPARED = ("predicted_return", "predicted_close", *QUANTILE_COLUMNS, P_UP)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopHome]:
    with loop_home(tmp_path_factory.mktemp("checked_versions"), synthetic_start="2023-01-03") as loop:
        loop.ingest(["AAPL", "MSFT"], LAST)
        loop.materialize(["market_index_sequences", "parent_model"], ops={"parent_model": TINY_MODEL})

        def child(ticker: str, **config) -> dg.ExecuteInProcessResult:
            return loop.materialize(
                ["training_sequences", "child_model"], ticker,
                ops={"child_model": {**TINY_MODEL, **config}}, raise_on_error=False,
            )

        loop.aapl_passing = child("AAPL", interval_tolerance=0.0)
        loop.aapl_failing = child("AAPL", naive_tolerance=0.5)
        loop.msft_failing = child("MSFT", naive_tolerance=0.5)
        yield loop


def _tags(home: LoopHome, name: str, version: str) -> dict[str, str]:
    return dict(home.mlflow.client().get_model_version(name, version).tags)


def test_each_version_is_registered_with_its_checks_outcome(home: LoopHome) -> None:
    assert home.aapl_passing.success, failures(home.aapl_passing)
    assert not home.aapl_failing.success and not home.msft_failing.success
    mlflow = home.mlflow
    assert mlflow.production_version(AAPL) is None and mlflow.production_version(MSFT) is None
    passing = _tags(home, AAPL, "1")
    assert (passing["checks_passed"], passing["checks_failed"], passing["checks_detail"]) == (
        "true", "", ""
    )
    assert passing["promotion_decision"] == "rejected"  # its 80 % band lost to a baseline
    for name in (AAPL, MSFT):
        failing = _tags(home, name, "2" if name == AAPL else "1")
        assert (failing["checks_passed"], failing["checks_failed"]) == (
            "false", "not_worse_than_naive"
        )
        assert "worse than naive persistence" in failing["checks_detail"]
        assert failing["checks_detail"].endswith("x 0.5")
    card = home.lake.read("child_model", "AAPL").row(0, named=True)
    assert (card["model_version"], card["checks_passed"], card["forecast_version"]) == (
        "2", False, "1"
    )
    assert home.lake.read("child_model", "MSFT")["forecast_version"].to_list() == [None]


def test_a_newer_failing_version_never_displaces_an_older_passing_one(home: LoopHome) -> None:
    model = resolve_forecast_model(home.mlflow, "AAPL")
    assert (model.version, model.source) == ("1", SOURCE_CHECKED)  # main served v2


def test_a_ticker_whose_only_version_failed_gets_no_forecast_and_the_reason(
    home: LoopHome,
) -> None:
    from fastapi.testclient import TestClient

    from serving.main import create_app
    from serving.settings import Settings
    from stock_assets.partitions import tickers_tag

    with pytest.raises(dg.Failure) as failure:
        resolve_forecast_model(home.mlflow, "MSFT")
    reason = failure.value.description
    assert reason.startswith(f"no forecast: no version of {MSFT} passed its blocking checks")
    assert "v1 failed not_worse_than_naive: test MAPE" in reason

    result = home.materialize(
        ["daily_forecast"], str(LAST), tags=tickers_tag(["AAPL", "MSFT"]), checks=False
    )
    [event] = result.asset_materializations_for_node("daily_forecast")
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert (metadata["tickers_forecast"], metadata["tickers_skipped"]) == (1, 1)
    assert f"| MSFT | {reason[:120]}" in metadata["skipped"]
    assert home.forecast("AAPL", LAST)["model_version"].unique().to_list() == ["1"]
    assert not (home.home / "lake" / "daily_forecast" / "MSFT").exists()

    app = create_app(Settings(lake_dir=home.home / "lake", reference_date=LAST))
    with TestClient(app) as client:
        missing = client.get("/forecasts/MSFT")
        assert missing.status_code == 404
        body = missing.json()
        assert (body["error"], body["ticker"], body["asset"]) == (
            "not_materialized", "MSFT", "daily_forecast"
        )
        assert body["detail"].startswith(
            f"No forecast for MSFT: no version of {MSFT} passed its blocking model checks"
        )
        assert "not_worse_than_naive: test MAPE" in body["detail"]
        served = client.get("/forecasts/AAPL")
        assert served.status_code == 200 and served.json()["model_version"] == "1"


def _window(prices: pl.DataFrame, indicators: pl.DataFrame, day: date):
    """The pyfunc input: every price row up to `day` with its model features."""
    features = model_feature_frame(indicators).drop("close")
    return (
        prices.filter(pl.col("date") <= day)
        .select("date", "close")
        .join(features.select("date", *MODEL_FEATURES), on="date", how="left")
        .sort("date")
        .to_pandas()
    )


def _assert_same_forecast(predicted, expected: pl.DataFrame) -> None:
    assert list(predicted["horizon"]) == expected["horizon"].to_list()
    assert [d.date() for d in predicted["target_date"]] == expected["target_date"].to_list()
    for column in COMPARED:
        np.testing.assert_allclose(
            predicted[column].to_numpy(), expected[column].to_numpy(), rtol=1e-9, atol=0,
            err_msg=column,
        )


def test_the_pyfunc_of_a_version_forecasts_what_daily_forecast_wrote(home: LoopHome) -> None:
    import mlflow

    mlflow.set_registry_uri(home.mlflow.tracking_uri)
    mlflow.set_tracking_uri(home.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{AAPL}/1")
    assert model.metadata.signature.inputs.input_names()[:2] == ["date", "close"]
    window = _window(home.lake.read("raw_prices", "AAPL"),
                     home.lake.read("price_indicators", "AAPL"), LAST)
    written = home.forecast("AAPL", LAST)
    assert written["model_version"].unique().to_list() == ["1"]
    _assert_same_forecast(model.predict(window), written.sort("horizon"))


def _promote_responsive_parent(home: LoopHome) -> str:
    """A copy of the production parent with skill weight 1, logged and registered the way
    fit_and_register logs models (pyfunc_files), then promoted: tiny models on a noise-like
    market forecast persistence, which would make the median's comparison vacuous."""
    import mlflow as mlflow_api
    import torch

    from stock_assets.datasets.windows import SequenceData
    from stock_assets.modeling.artifacts import ModelBundle
    from stock_assets.modeling.pyfunc_model import pyfunc_files

    mlflow = home.mlflow
    production = mlflow.production_version(PARENT)
    bundle = ModelBundle.from_files(mlflow.load_model_artifacts(PARENT, production.version))
    bundle.state_dict["skill_weight"] = torch.ones(())
    data = SequenceData.load(home.home / "lake" / "market_index_sequences.npz")
    with mlflow.start_run(mlflow.parent_experiment, "GSPC-responsive") as run:
        mlflow_api.log_param("purpose", "pyfunc round trip")
        mlflow.log_model_artifacts(run.info.run_id, pyfunc_files(bundle, data))
        run_id = run.info.run_id
    version = mlflow.register(PARENT, run_id).version
    mlflow.promote(PARENT, version)
    return version


def test_the_production_pyfunc_forecasts_like_the_asset_path(home: LoopHome) -> None:
    import mlflow

    from stock_assets.forecasting.inference import forecast_dates
    from stock_assets.forecasting.model_choice import load_bundle

    version = _promote_responsive_parent(home)
    tracking = home.mlflow.tracking_uri
    mlflow.set_registry_uri(tracking)
    mlflow.set_tracking_uri(tracking)
    model = mlflow.pyfunc.load_model(f"models:/{PARENT}@production")
    prices = home.lake.read("market_index_prices")
    indicators = home.lake.read("market_index_indicators")
    bundle = load_bundle(home.mlflow, PARENT, version)
    day = date(2024, 6, 7)
    expected = forecast_dates(
        ticker="GSPC", as_of_dates=[day], prices=prices, features=indicators,
        network=bundle.network(), scaler=bundle.feature_scaler(), spread=bundle.spread_model(),
        context_length=bundle.context_length, model_name=PARENT, model_version=version,
        created_at=datetime.now(UTC),
    )[day]
    assert expected["predicted_return"].abs().min() > 0  # a median that is not persistence
    predicted = model.predict(_window(prices, indicators, day))
    _assert_same_forecast(predicted, expected)
    assert (predicted["close_q90"] > predicted["close_q10"]).all()
    # A window too short for the network is a clear error, not a forecast.
    with pytest.raises(ValueError, match="rows with every feature"):
        model.predict(_window(prices, indicators, day).tail(5))
