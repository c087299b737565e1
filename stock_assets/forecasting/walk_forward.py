"""Walk-forward back-tests: refit the child every K sessions on data before the refit date only.

Why: a back-test with the production model is in-sample over every date the model trained on, so
there is nothing honest left to score. Here the sessions of the range are cut into blocks of K;
before each block a child is trained (from a parent fitted once on ^GSPC data before the range's
first session) on the ticker's feature history dated strictly before the block's first session,
with its own scaler and spread model, and forecasts every session of its block. So no forecast
ever comes from a model that saw its date or anything after it.

The refitted models are evaluation artifacts: each is logged to MLflow (experiment
`stock_assets-walk-forward`) and registered under `<model name>.walk_forward`, which no gate and
no alias ever touches, so the performance log can name the exact version behind every forecast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

import dagster as dg
import polars as pl

from stock_assets.datasets.windows import SequenceData, SplitConfig, build_sequences
from stock_assets.modeling.artifacts import ModelBundle
from stock_assets.modeling.registry import MlflowResource, registered_model_name
from stock_assets.modeling.training import TrainConfig

WALK_FORWARD_EXPERIMENT = "stock_assets-walk-forward"
WALK_FORWARD_SUFFIX = ".walk_forward"


class WalkForwardConfig(dg.Config):
    """Run config of daily_forecast: `refit_every` K > 0 turns a range run into a walk-forward
    back-test (None: forecast with the production version, as a plain back-test does)."""

    refit_every: int | None = None
    strategy: str = "fine_tune"  # freeze | fine_tune | scratch
    # Sessions of history each refit's network trains on (the most recent before its date): 5
    # years keeps a refit to seconds on 2 cores; None = all history. Its spread model is fitted
    # on all history before the date: the tails of standardised returns need every year there is.
    history_sessions: int | None = 1260
    parent_history_sessions: int | None = 2520
    epochs: int = 15
    hidden_size: int = 32
    num_layers: int = 2
    seed: int = TrainConfig.seed

    def train_config(self) -> TrainConfig:
        return replace(TrainConfig(), epochs=self.epochs, seed=self.seed)


# (bundle, its training data, first session it forecasts) -> (model name, version) of the refit
Register = Callable[[ModelBundle, SequenceData, date], tuple[str, str]]


@dataclass(frozen=True)
class Refit:
    """One refitted child and the sessions it forecasts."""

    sessions: list[date]
    bundle: ModelBundle
    network: object
    name: str
    version: str


def refit_blocks(sessions: Sequence[date], every: int) -> list[list[date]]:
    """The sessions, in order, cut into consecutive blocks of `every` (the last may be shorter)."""
    if every < 1:
        raise ValueError(f"refit_every must be >= 1, got {every}")
    ordered = sorted(sessions)
    return [ordered[i : i + every] for i in range(0, len(ordered), every)]


def sequences_before(
    history: pl.DataFrame, cutoff: date, split: SplitConfig, ticker: str, sessions: int | None
) -> SequenceData:
    """Windows of the feature rows dated strictly before `cutoff` (the last `sessions` of them)."""
    before = history.filter(pl.col("date") < cutoff).sort("date")
    if sessions is not None:
        before = before.tail(sessions)
    return build_sequences(before, split, ticker=ticker)


def train_model(
    data: SequenceData,
    *,
    strategy: str,
    parent_state: dict | None,
    config: WalkForwardConfig,
    train: TrainConfig,
    spread_data: SequenceData | None = None,
) -> tuple[object, ModelBundle]:
    """A network (child by `strategy` from `parent_state`, or the parent itself when it is None
    and strategy is scratch), trained on `data` with early stopping on its validation windows,
    and its bundle: `data`'s scaler, and the spread model of `spread_data`'s training part (by
    default `data`'s; the spread gains from every year of history, the network does not)."""
    from stock_assets.modeling.networks import build_network
    from stock_assets.modeling.probabilistic import fit_model_spread
    from stock_assets.modeling.training import init_child, set_determinism, train_network

    params = {"n_features": data.n_features, "horizon": data.horizon,
              "hidden_size": config.hidden_size, "num_layers": config.num_layers, "dropout": 0.1}
    set_determinism(train.seed)
    if parent_state is None:
        network, lr_factor = build_network("lstm", **params), 1.0
    else:
        network, lr_factor = init_child(parent_state, strategy, "lstm", params,
                                        fine_tune_lr_factor=train.fine_tune_lr_factor)
    train_network(network, data, train, lr_factor=lr_factor)
    apply_persistence_fallback(network, data)
    bundle = ModelBundle.from_network(network, ticker=data.ticker, architecture="lstm",
                                      network_params=params, data=data,
                                      spread=fit_model_spread(spread_data or data))
    return network, bundle


def apply_persistence_fallback(network, data: SequenceData) -> bool:
    """What child_model does by default: a network not better than naive persistence by the
    fallback margin on its validation windows forecasts persistence (skill weight 0)."""
    from stock_assets.modeling.config import ModelTrainingConfig
    from stock_assets.modeling.evaluation import validation_mapes
    from stock_assets.modeling.registration import PROMOTION_METRIC, falls_back_to_persistence

    network_mape, naive_mape = validation_mapes(network, data)
    fallback = falls_back_to_persistence(
        network, {PROMOTION_METRIC: network_mape}, {PROMOTION_METRIC: naive_mape},
        1.0 - ModelTrainingConfig().fallback_margin,
    )
    if fallback:
        network.skill_weight.fill_(0.0)
    return fallback


_PARENTS: dict[tuple, ModelBundle] = {}


def parent_before(
    index_history: pl.DataFrame, cutoff: date, config: WalkForwardConfig, split: SplitConfig
) -> ModelBundle:
    """The walk-forward parent: trained on ^GSPC rows before `cutoff`, once per process."""
    from stock_assets.tickers import MARKET_INDEX_KEY

    key = (cutoff, index_history.height, index_history["date"].max(), config.model_dump_json(),
           split.sessions_after_training)
    if key not in _PARENTS:
        data = sequences_before(index_history, cutoff, split, MARKET_INDEX_KEY,
                                config.parent_history_sessions)
        _, _PARENTS[key] = train_model(data, strategy="scratch", parent_state=None,
                                       config=config, train=config.train_config())
    return _PARENTS[key]


def mlflow_register(mlflow: MlflowResource, strategy: str, dagster_run_id: str) -> Register:
    """The asset's Register: each refit logged and registered in MLflow (never promoted)."""
    return lambda bundle, data, first: register_refit(
        mlflow, bundle, data, first, strategy, dagster_run_id
    )


def register_refit(mlflow: MlflowResource, bundle: ModelBundle, data: SequenceData,
                   first: date, strategy: str, dagster_run_id: str) -> tuple[str, str]:
    """Log and register one refit (never promoted); (registered name, version)."""
    name = registered_model_name(bundle.ticker) + WALK_FORWARD_SUFFIX
    tags = {"ticker": bundle.ticker, "strategy": strategy, "purpose": "walk-forward evaluation",
            "first_forecast": first.isoformat(), "dagster_run_id": dagster_run_id}
    with mlflow.start_run(WALK_FORWARD_EXPERIMENT, f"{bundle.ticker}-wf-{first}", tags) as run:
        import mlflow as mlflow_api

        mlflow_api.log_params({"train_start": bundle.train_start, "train_end": bundle.train_end,
                               "first_forecast": first.isoformat(), "n_train": len(data.y_train)})
        mlflow.log_model_artifacts(run.info.run_id, bundle.to_files())
    registered = mlflow.register(name, run.info.run_id, tags=tags)
    return name, registered.version


def walk_forward_refits(
    *,
    ticker: str,
    sessions: Sequence[date],
    history: pl.DataFrame,
    index_history: pl.DataFrame,
    config: WalkForwardConfig,
    split: SplitConfig,
    register: Register | None = None,
    log=None,
) -> list[Refit]:
    """One refitted child per block of `config.refit_every` sessions, each trained on `history`
    rows dated before its block's first session (and the parent on ^GSPC rows before the
    range's first session). `register` names each refit (the asset: MLflow); without it
    (a benchmark) they are named `walk_forward` / `refit-<n>` and kept in memory only."""
    blocks = refit_blocks(sessions, int(config.refit_every or 0))
    parent = None
    if config.strategy != "scratch":
        parent = parent_before(index_history, blocks[0][0], config, split)
    refits = []
    for block in blocks:
        data = sequences_before(history, block[0], split, ticker, config.history_sessions)
        network, bundle = train_model(
            data, strategy=config.strategy,
            parent_state=parent.state_dict if parent else None,
            config=config, train=config.train_config(),
            spread_data=sequences_before(history, block[0], split, ticker, None),
        )
        if register is not None:
            name, version = register(bundle, data, block[0])
        else:
            name, version = "walk_forward", f"refit-{len(refits)}"
        if log is not None:
            log(f"{ticker}: refit v{version} trained to {bundle.train_end} forecasts "
                f"{block[0]}..{block[-1]}")
        refits.append(Refit(list(block), bundle, network, name, version))
    return refits


def forecast_refits(
    refits: Sequence[Refit],
    *,
    ticker: str,
    prices: pl.DataFrame,
    features: pl.DataFrame,
    created_at: datetime,
) -> dict[date, pl.DataFrame]:
    """daily_forecast rows of every refit's sessions, each by its own refit."""
    from stock_assets.forecasting.inference import forecast_dates

    forecasts: dict[date, pl.DataFrame] = {}
    for refit in refits:
        forecasts |= forecast_dates(
            ticker=ticker, as_of_dates=refit.sessions, prices=prices, features=features,
            network=refit.network, scaler=refit.bundle.feature_scaler(),
            spread=refit.bundle.spread_model(), context_length=refit.bundle.context_length,
            model_name=refit.name, model_version=refit.version, created_at=created_at,
        )
    return forecasts
