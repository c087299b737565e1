"""The modeling stage through Dagster, on a real instance, a real MLflow store (SQLite + file
artifacts under the home), real Feast and real Optuna storage.

One module-scoped home runs the whole story once, in order, and each test checks one promise:
data stage -> ^GSPC sequences -> parent (promoted, nothing to beat) -> AAPL child by `freeze`
transfer (promoted) -> the same AAPL training again (an equal model: not promoted) -> an AAPL
challenger held to half of naive's MAPE (rejected; the blocking check fails the run) -> an MSFT
child by `fine_tune` -> two tuning materializations of one Optuna study -> a parent trained with
the tuned parameters. The synthetic market is noise-like, so `naive_tolerance` is 10 wherever a
model must pass the naive gate, and the "worse than naive" challenger is crafted with 0.5.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pytest
import torch

from stock_assets.datasets.windows import SequenceData, model_feature_frame
from stock_assets.modeling.artifacts import ModelBundle
from stock_assets.modeling.assets import MODEL_CHECKS, OPTUNA_STUDY
from stock_assets.modeling.registry import MlflowResource

# Every test here reads the one trained home: keep them on one xdist worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("model_assets")

SYNTHETIC_START, SYNTHETIC_END = "2023-01-03", "2024-06-28"
TICKERS = ("AAPL", "MSFT")
PARENT, CHILD = "stock_assets.GSPC", "stock_assets.AAPL"
SEQUENCES = {"context_length": 20, "horizon": 5}
# Tiny and deterministic; with this seed and rate the frozen-encoder child's head improves on
# validation in epoch 1 (best_epoch >= 1), so its head really differs from the parent's.
TINY = {
    "epochs": 3,
    "hidden_size": 8,
    "num_layers": 1,
    "batch_size": 32,
    "learning_rate": 3e-3,
    "seed": 1,
    "use_tuned_params": False,
    "naive_tolerance": 10.0,
    "interval_tolerance": 10.0,
    # tiny networks on short synthetic histories: the gate's orderings, not the bands, are tested
}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass
class Training:
    """One materialization of a model asset and what it left behind."""

    result: dg.ExecuteInProcessResult
    metadata: dict[str, Any]
    card: pl.DataFrame  # the lake's model card after the run
    production: str | None  # the production alias after the run
    history_rows: int | None = None  # model_history rows after the run (children)

    @property
    def run_id(self) -> str:
        return str(self.card["run_id"][0])

    @property
    def version(self) -> str:
        return str(self.card["model_version"][0])


@dataclass
class TrainedHome:
    home: Path
    instance: dg.DagsterInstance
    resources: dict[str, Any]
    parent: Training
    aapl_first: Training
    aapl_again: Training
    aapl_worse: Training
    msft: Training
    tuning: list[dg.ExecuteInProcessResult] = field(default_factory=list)
    tuned_parent: Training | None = None

    @property
    def mlflow(self) -> MlflowResource:
        return self.resources["mlflow"]

    def sequences(self, ticker: str) -> SequenceData:
        lake = self.home / "lake"
        path = (
            lake / "market_index_sequences.npz"
            if ticker == "GSPC"
            else (lake / "training_sequences" / f"{ticker}.npz")
        )
        return SequenceData.load(path)

    def bundle(self, name: str, version: str) -> ModelBundle:
        return ModelBundle.from_files(self.mlflow.load_model_artifacts(name, version))


def _assets() -> list:
    from stock_assets.datasets.definitions import defs as datasets
    from stock_assets.features.definitions import defs as features
    from stock_assets.ingestion.definitions import defs as ingestion
    from stock_assets.modeling.definitions import defs as modeling

    return [*ingestion.assets, *features.assets, *datasets.assets, *modeling.assets]


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    [materialization] = [  # child_model's node also materializes model_history
        m for m in result.asset_materializations_for_node(asset)
        if m.asset_key.to_user_string() == asset
    ]
    return {key: value.value for key, value in materialization.metadata.items()}


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        str(event.step_failure_data.error.message)
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedHome]:
    from stock_assets.partitions import ticker_partitions
    from stock_assets.testing import loop_home

    # The Optuna storage (and any env-built resource) follows the home.
    with loop_home(tmp_path_factory.mktemp("model"), SYNTHETIC_START) as loop:
        home, instance = loop.home, loop.instance
        resources = loop.resources(SYNTHETIC_END)
        mlflow: MlflowResource = resources["mlflow"]
        lake = resources["lake"]
        assets = _assets()
        instance.add_dynamic_partitions(ticker_partitions.name, list(TICKERS))

        def run(selection: list[str], partition: str | None = None, **configs: dict):
            return dg.materialize(
                assets,
                selection=dg.AssetSelection.assets(*selection),
                partition_key=partition,
                resources=resources,
                instance=instance,
                run_config={
                    **QUIET,
                    "ops": {op: {"config": c} for op, c in configs.items()},
                },
                raise_on_error=False,
            )

        def must(result: dg.ExecuteInProcessResult) -> dg.ExecuteInProcessResult:
            assert result.success, _failures(result)
            return result

        def parent(**config: Any) -> Training:
            result = run(["parent_model"], parent_model={**TINY, **config})
            return Training(
                result,
                _metadata(result, "parent_model"),
                lake.read("parent_model"),
                getattr(mlflow.production_version(PARENT), "version", None),
            )

        def child(ticker: str, **config: Any) -> Training:
            result = run(
                ["training_sequences", "child_model", "model_history"],
                ticker,
                training_sequences=SEQUENCES,
                child_model={**TINY, **config},
            )
            production = mlflow.production_version(f"stock_assets.{ticker}")
            return Training(
                result,
                _metadata(result, "child_model"),
                lake.read("child_model", ticker),
                getattr(production, "version", None),
                lake.read("model_history", ticker).height,
            )

        must(run(["market_index_prices", "market_index_indicators"]))
        for ticker in TICKERS:
            must(run(["raw_prices", "price_indicators"], ticker))
        must(run(["feast_features"]))
        must(run(["market_index_sequences"], market_index_sequences=SEQUENCES))

        setup = TrainedHome(
            home=home,
            instance=instance,
            resources=resources,
            parent=parent(),
            aapl_first=child("AAPL", strategy="freeze"),
            aapl_again=child("AAPL", strategy="freeze"),
            aapl_worse=child("AAPL", strategy="freeze", naive_tolerance=0.5),
            msft=child("MSFT", strategy="fine_tune"),
        )
        tuning = {"n_trials": 2, "epochs_per_trial": 1}
        setup.tuning = [
            run(["model_hyperparameters"], model_hyperparameters=tuning)
            for _ in range(2)
        ]
        setup.tuned_parent = parent(use_tuned_params=True, epochs=1)
        yield setup


# --- the end-to-end training, in MLflow and in the lake ------------------------------------------


def test_every_training_succeeds_but_the_crafted_worse_than_naive_one(trained) -> None:
    for training in (
        trained.parent,
        trained.aapl_first,
        trained.aapl_again,
        trained.msft,
    ):
        assert training.result.success, _failures(training.result)
    assert trained.tuned_parent.result.success, _failures(trained.tuned_parent.result)
    assert all(result.success for result in trained.tuning)
    assert not trained.aapl_worse.result.success


def test_mlflow_has_the_parent_and_children_runs_with_their_data_and_losses(
    trained,
) -> None:
    client = trained.mlflow.client()
    parent_exp = client.get_experiment_by_name(trained.mlflow.parent_experiment)
    child_exp = client.get_experiment_by_name(trained.mlflow.child_experiment)
    parent_runs = {
        r.info.run_id: r for r in client.search_runs([parent_exp.experiment_id])
    }
    child_runs = {
        r.info.run_id: r for r in client.search_runs([child_exp.experiment_id])
    }
    assert set(parent_runs) == {trained.parent.run_id, trained.tuned_parent.run_id}
    children = (
        trained.aapl_first,
        trained.aapl_again,
        trained.aapl_worse,
        trained.msft,
    )
    assert set(child_runs) == {t.run_id for t in children}
    # Model artifacts live under the home, beside the SQLite store.
    assert (trained.home / "mlflow" / "mlflow.db").is_file()
    assert parent_exp.artifact_location.startswith(
        (trained.home / "mlflow" / "artifacts").as_uri()
    )

    for ticker, training, runs in (
        ("GSPC", trained.parent, parent_runs),
        ("AAPL", trained.aapl_first, child_runs),
        ("MSFT", trained.msft, child_runs),
    ):
        run = runs[training.run_id]
        params, metrics = run.data.params, run.data.metrics
        data = trained.sequences(ticker)
        stored = (
            trained.home / "lake" / "market_index_sequences.npz"
            if ticker == "GSPC"
            else trained.home / "lake" / "training_sequences" / f"{ticker}.npz"
        )
        # The dataset the model saw: its date range, sizes and the fingerprint of the stored file.
        assert params["ticker"] == ticker
        assert (
            params["dataset_fingerprint"]
            == hashlib.sha256(stored.read_bytes()).hexdigest()[:16]
        )
        assert (
            params["data_train_first_anchor"]
            == data.boundaries.train_first_anchor.isoformat()
        )
        assert (
            params["data_train_last_target"]
            == data.boundaries.train_last_target.isoformat()
        )
        assert (
            params["data_test_last_target"]
            == data.boundaries.test_last_target.isoformat()
        )
        assert int(params["data_n_train"]) == len(data.y_train) > 100
        assert int(params["data_n_test"]) == len(data.y_test)
        assert params["net_hidden_size"] == "8" and params["train_seed"] == str(TINY["seed"])
        # One loss per epoch, steps 1..epochs_run.
        epochs = int(metrics["epochs_run"])
        assert epochs == TINY["epochs"]
        for name in ("train_loss", "val_loss"):
            history = client.get_metric_history(training.run_id, name)
            assert [m.step for m in history] == list(range(1, epochs + 1)), name
            assert all(np.isfinite(m.value) and m.value > 0 for m in history), name
        # Final metrics, and the baselines on the same test windows.
        for prefix in ("test", "naive", "drift", "linear"):
            for metric in ("mape_h1", "mape_hH", "rmse_hH", "dir_acc_hH"):
                assert np.isfinite(metrics[f"{prefix}_{metric}"]), f"{prefix}_{metric}"
        naive_mape = (
            np.mean(
                np.abs(data.anchor_close_test - data.future_close_test[:, -1])
                / data.future_close_test[:, -1]
            )
            * 100
        )
        assert metrics["naive_mape_hH"] == pytest.approx(naive_mape, rel=1e-9)
        assert metrics["test_mape_hH"] == pytest.approx(
            float(training.card["test_mape_h5"][0])
        )
        assert training.metadata["test_mape_h5"] == pytest.approx(
            metrics["test_mape_hH"]
        )
        assert training.metadata["mlflow_run_id"] == training.run_id


def test_registered_models_and_model_cards_name_the_exact_versions(trained) -> None:
    client = trained.mlflow.client()
    versions = {
        name: {
            str(v.version): v.run_id
            for v in client.search_model_versions(f"name='{name}'")
        }
        for name in (PARENT, CHILD, "stock_assets.MSFT")
    }
    assert versions[PARENT] == {
        "1": trained.parent.run_id,
        "2": trained.tuned_parent.run_id,
    }
    assert versions[CHILD] == {
        "1": trained.aapl_first.run_id,
        "2": trained.aapl_again.run_id,
        "3": trained.aapl_worse.run_id,
    }
    assert versions["stock_assets.MSFT"] == {"1": trained.msft.run_id}

    # The lake card names the version this run produced and the one in production.
    card = trained.home / "lake" / "child_model" / "AAPL.parquet"
    assert card.is_file()
    for training, version, production in (
        (trained.aapl_first, "1", "1"),
        (trained.aapl_again, "2", "1"),
        (trained.aapl_worse, "3", "1"),
    ):
        row = training.card.row(0, named=True)
        assert (row["model_name"], row["model_version"], row["production_version"]) == (
            CHILD,
            version,
            production,
        )
        assert row["parent_version"] == "1"
        assert training.metadata["model_version"] == f"{CHILD} v{version}"
        assert training.metadata["production_version"] == production
    assert trained.parent.card["model_name"][0] == PARENT
    assert (trained.parent.version, trained.parent.card["production_version"][0]) == (
        "1",
        "1",
    )


def test_model_history_grows_by_one_row_per_training(trained) -> None:
    assert [
        trained.aapl_first.history_rows,
        trained.aapl_again.history_rows,
        trained.aapl_worse.history_rows,
    ] == [1, 2, 3]
    history = pl.read_parquet(trained.home / "lake" / "model_history" / "AAPL.parquet")
    assert history["model_version"].to_list() == ["1", "2", "3"]
    assert history["promoted"].to_list() == [True, False, False]
    assert history["production_version"].to_list() == ["1", "1", "1"]
    assert history["run_id"].to_list() == [
        trained.aapl_first.run_id,
        trained.aapl_again.run_id,
        trained.aapl_worse.run_id,
    ]
    assert history["parent_version"].to_list() == ["1", "1", "1"]
    assert (
        pl.read_parquet(trained.home / "lake" / "model_history" / "MSFT.parquet").height
        == 1
    )


def _png(markdown: str) -> bytes:
    prefix = "![chart](data:image/png;base64,"
    assert markdown.startswith(prefix) and markdown.endswith(")")
    return base64.b64decode(markdown[len(prefix) : -1])


def test_metadata_has_charts_the_baseline_table_and_the_run_link(trained) -> None:
    for training, strategy in (
        (trained.aapl_first, "freeze"),
        (trained.parent, "parent"),
    ):
        metadata = training.metadata
        for chart in ("loss_curve", "test_forecast"):
            png = _png(metadata[chart])
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000, chart
        table = metadata["metrics_vs_baselines"].splitlines()
        assert table[0].startswith("| model | kind | mape_h1 | mape_hH |")
        assert [line.split("|")[1].strip() for line in table[2:]] == [
            strategy,
            "naive",
            "drift",
            "linear",
        ]
        run = trained.mlflow.client().get_run(training.run_id)
        assert metadata["mlflow_run"].endswith(
            f"/#/experiments/{run.info.experiment_id}/runs/{training.run_id}"
        )
        name = str(training.card["model_name"][0])
        assert metadata["mlflow_model_version"].endswith(f"/#/models/{name}/versions/{training.version}")


# --- the promotion gate ----------------------------------------------------------------------------


def _version_tags(trained: TrainedHome, name: str, version: str) -> dict[str, str]:
    return dict(trained.mlflow.client().get_model_version(name, version).tags)


def test_first_training_with_no_champion_is_promoted(trained) -> None:
    first = trained.aapl_first
    assert first.production == "1"
    assert bool(first.card["promoted"][0]) is True
    assert first.card["champion_mape_h5"][0] is None
    assert first.metadata["promotion"].startswith("no production model yet")
    tags = _version_tags(trained, CHILD, "1")
    assert tags["promotion_decision"] == "promoted"
    assert tags["champion_mape"] == ""
    assert (
        float(tags["challenger_mape"])
        <= float(tags["naive_mape"]) * TINY["naive_tolerance"]
    )
    client = trained.mlflow.client()
    assert client.get_run(first.run_id).data.tags["promotion_decision"] == "promoted"
    assert trained.parent.production == "1" and bool(trained.parent.card["promoted"][0])


def test_the_same_seed_and_data_give_an_equal_model_which_is_not_promoted(
    trained,
) -> None:
    again = trained.aapl_again
    assert again.production == "1"  # alias unchanged
    assert bool(again.card["promoted"][0]) is False
    challenger = float(again.card["test_mape_h5"][0])
    # The champion (v1, loaded back from MLflow) scores exactly what the challenger scores.
    assert again.card["champion_mape_h5"][0] == challenger
    assert again.metadata["champion_mape_h5"] == challenger
    assert again.metadata["test_mape_h5"] == challenger
    assert f"does not beat production {challenger:.4f}%" in again.metadata["promotion"]
    tags = _version_tags(trained, CHILD, "2")
    assert tags["promotion_decision"] == "rejected"
    assert tags["challenger_mape"] == tags["champion_mape"] == f"{challenger:.6f}"
    assert tags["promotion_reason"] == again.metadata["promotion"]


def test_two_dagster_runs_with_the_same_seed_and_data_are_identical(trained) -> None:
    first, again = trained.aapl_first, trained.aapl_again
    assert first.result.run_id != again.result.run_id
    client = trained.mlflow.client()
    runs = [client.get_run(t.run_id) for t in (first, again)]
    assert (
        runs[0].data.params["dataset_fingerprint"]
        == runs[1].data.params["dataset_fingerprint"]
    )
    metrics = [
        {k: v for k, v in r.data.metrics.items() if k != "train_seconds"} for r in runs
    ]
    assert metrics[0] == metrics[1]
    for name in ("train_loss", "val_loss"):
        losses = [
            [m.value for m in client.get_metric_history(t.run_id, name)]
            for t in (first, again)
        ]
        assert losses[0] == losses[1] and len(losses[0]) == TINY["epochs"]
    weights = [trained.bundle(CHILD, v).state_dict for v in ("1", "2")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_worse_than_naive_challenger_is_rejected_and_its_blocking_check_fails_the_run(
    trained,
) -> None:
    worse = trained.aapl_worse
    assert not worse.result.success
    [failure] = _failures(worse.result)
    assert (
        "blocking asset check failed" in failure and "not_worse_than_naive" in failure
    )
    evaluations = {e.check_name: e for e in worse.result.get_asset_check_evaluations()}
    assert {name: e.passed for name, e in evaluations.items()} == {
        "finite_weights": True,
        "test_metrics_present": True,
        "not_worse_than_naive": False,
    }
    check = {
        k: v.value for k, v in evaluations["not_worse_than_naive"].metadata.items()
    }
    assert check["naive_tolerance"] == 0.5
    assert check["test_mape_h5"] > 0.5 * check["naive_mape_h5"]
    # The network was over the limit, so it was shrunk to persistence first (the fallback); with a
    # tolerance below 1 even persistence is over it, so the check still fails.
    card = worse.card.row(0, named=True)
    assert card["persistence_fallback"] is True
    assert card["network_test_mape_h5"] > 0.5 * card["naive_mape_h5"]
    assert card["test_mape_h5"] == pytest.approx(card["naive_mape_h5"], rel=1e-9)
    assert check["test_mape_h5"] == pytest.approx(check["naive_mape_h5"], rel=1e-9)
    assert worse.metadata["skill_weight"] == 0.0
    # Rejected by the gate: production stays on v1.
    assert worse.production == "1"
    assert card["promoted"] is False
    assert "worse than naive persistence" in card["decision_reason"]
    tags = _version_tags(trained, CHILD, "3")
    assert tags["promotion_decision"] == "rejected" and tags["persistence_fallback"] == "true"
    assert trained.mlflow.client().get_run(worse.run_id).data.tags["persistence_fallback"] == "true"


def test_blocking_checks_are_recorded_per_partition_on_the_instance(trained) -> None:
    from dagster._core.event_api import PartitionKeyFilter

    from stock_assets.modeling.assets import child_model, parent_model

    for asset in (child_model, parent_model):
        assert {spec.name: spec.blocking for spec in asset.check_specs} == {
            name: True for name in MODEL_CHECKS
        }

    keys = [dg.AssetCheckKey(dg.AssetKey("child_model"), name) for name in MODEL_CHECKS]

    def recorded(ticker: str) -> dict[str, str]:
        records = (
            trained.instance.event_log_storage.get_latest_asset_check_execution_by_key(
                keys, partition_filter=PartitionKeyFilter(key=ticker)
            )
        )
        assert {r.partition for r in records.values()} == {ticker}
        return {key.name: r.status.value for key, r in records.items()}

    # AAPL's latest training was the rejected one; MSFT's passed every check.
    assert recorded("AAPL") == {
        "finite_weights": "SUCCEEDED",
        "test_metrics_present": "SUCCEEDED",
        "not_worse_than_naive": "FAILED",
    }
    assert recorded("MSFT") == {name: "SUCCEEDED" for name in MODEL_CHECKS}


# --- transfer from the production parent -----------------------------------------------------------


def test_children_start_from_the_production_parents_weights(trained) -> None:
    client = trained.mlflow.client()
    for training, strategy, lr_factor in (
        (trained.aapl_first, "freeze", 1.0),
        (trained.msft, "fine_tune", 0.2),
    ):
        params = client.get_run(training.run_id).data.params
        assert (params["parent_version"], params["parent_source"]) == (
            "1",
            "production",
        )
        assert (params["strategy"], float(params["lr_factor"])) == (strategy, lr_factor)
        assert training.metadata["parent_version"] == "v1 (production)"

    parent = trained.bundle(PARENT, "1").state_dict
    frozen = trained.bundle(CHILD, "1").state_dict
    assert (
        int(client.get_run(trained.aapl_first.run_id).data.metrics["best_epoch"]) >= 1
    )
    encoder = [k for k in parent if k.startswith("encoder.")]
    head = [k for k in parent if k.startswith("head.")]
    assert encoder and head
    # freeze: the encoder is the parent's, bit for bit; the head was retrained.
    assert all(torch.equal(parent[k], frozen[k]) for k in encoder)
    assert not all(torch.equal(parent[k], frozen[k]) for k in head)


# --- Optuna ------------------------------------------------------------------------------------


def test_tuning_resumes_one_study_and_the_parent_uses_its_best_params(trained) -> None:
    import optuna

    storage = f"sqlite:///{trained.home / 'optuna.db'}"
    study = optuna.load_study(study_name=OPTUNA_STUDY, storage=storage)
    assert len(study.trials) == 4
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert all(t.user_attrs["epochs_run"] == 1 for t in study.trials)
    outputs = [_metadata(result, "model_hyperparameters") for result in trained.tuning]
    assert [m["n_trials"] for m in outputs] == [2, 4]
    assert outputs[-1]["storage"] == str(trained.home / "optuna.db")
    lake = pl.read_parquet(trained.home / "lake" / "model_hyperparameters.parquet")
    assert lake["n_trials"].to_list() == [4]

    best = study.best_trial.params
    assert outputs[-1]["best_params"] == best
    params = trained.mlflow.client().get_run(trained.tuned_parent.run_id).data.params
    assert params["architecture"] == best["architecture"]
    assert params["net_hidden_size"] == str(best["hidden_size"])
    assert params["net_num_layers"] == str(best["num_layers"])
    assert float(params["net_dropout"]) == best["dropout"]
    assert float(params["train_learning_rate"]) == best["learning_rate"]
    assert params["train_batch_size"] == str(best["batch_size"])
    assert trained.tuned_parent.card["architecture"][0] == best["architecture"]


# --- the dataset the child learned from -----------------------------------------------------------


def test_stored_scaler_was_fitted_on_training_rows_only(trained) -> None:
    data = trained.sequences("AAPL")
    frame = model_feature_frame(
        pl.read_parquet(trained.home / "lake" / "price_indicators" / "AAPL.parquet")
    )
    features = frame.select(data.feature_names)
    train_rows = frame["date"] <= data.boundaries.train_last_target
    training = features.filter(train_rows).to_numpy()
    assert data.scaler.n_samples_seen_ == len(training) < frame.height
    np.testing.assert_allclose(
        data.scaler.mean_, training.mean(axis=0), rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        data.scaler.var_, training.var(axis=0), rtol=1e-9, atol=1e-12
    )
    # Fitting on all rows would have given other statistics.
    everything = features.to_numpy().mean(axis=0)
    assert not np.allclose(data.scaler.mean_, everything, rtol=1e-3)
    # The last training target precedes the first validation anchor.
    assert data.boundaries.train_last_target < data.boundaries.val_first_anchor
