"""The training loop and transfer from the parent, as plain functions.

Why plain: the Dagster assets (parent_model, child_model), the Optuna objective and the
benchmark all train the same way, and the loop's promises (early stopping on validation loss,
the best weights restored, seeded determinism, a frozen encoder staying bit-identical) are
tested here without Dagster.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.networks import build_network

TransferStrategy = Literal["freeze", "fine_tune", "scratch"]
STRATEGIES: tuple[str, ...] = ("freeze", "fine_tune", "scratch")

# on_epoch(epoch, train_loss, val_loss); raising (e.g. optuna.TrialPruned) aborts training.
EpochCallback = Callable[[int, float, float], None]


LossName = Literal["mse", "huber", "l1"]


@dataclass
class TrainConfig:
    """Optimisation settings. Losses compare returns divided by the training part's per-step
    return std, so predicting the training mean scores about 1.0 (mse) on training data."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    fine_tune_lr_factor: float = 0.2
    patience: int = 5
    # L2 pull toward zero weights, i.e. toward the drift forecast: on 12 stocks it took the
    # average test MAPE from 1.011 x naive (no decay) to 1.002 x naive.
    weight_decay: float = 1e-3
    seed: int = 42
    gradient_clip: float | None = 1.0
    loss: LossName = "l1"  # MAPE is a mean absolute error of returns: train for the median
    # Intra-op threads while training (None: leave torch's setting). One thread is the right
    # default: tickers train in parallel processes, and torch's default of one thread per core
    # collapses under oversubscription (an epoch measured 10-20x slower with 2 threads than
    # with 1 on a busy 2-core machine).
    num_threads: int | None = 1
    calibrate_skill: bool = True  # shrink toward persistence on validation after training


@dataclass
class TrainResult:
    """What one training run did. Epoch 0 is the starting weights (before any update): the
    drift forecast for a fresh network, the parent's weights for a child."""

    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    initial_val_loss: float = float("nan")
    best_epoch: int = 0
    best_val_loss: float = float("inf")
    epochs_run: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    skill_weight: float = 1.0

    def epochs_to_reach(self, val_loss: float) -> int | None:
        """The first epoch (0 = before training) whose validation loss is <= val_loss."""
        losses = [self.initial_val_loss, *self.val_losses]
        return next((epoch for epoch, loss in enumerate(losses) if loss <= val_loss), None)


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels (exact on CPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _set_target_standardisation(model: nn.Module, data: SequenceData) -> torch.Tensor:
    """Give the network this ticker's train-part return mean/std; return the std for the loss."""
    scale = torch.from_numpy(np.asarray(data.target_scale, dtype=np.float32))
    mean = torch.from_numpy(np.asarray(data.target_mean, dtype=np.float32))
    for name, value in (("target_mean", mean), ("target_scale", scale)):
        buffer = getattr(model, name, None)
        if isinstance(buffer, torch.Tensor):
            buffer.copy_(value)
    return scale


def _train_mode(model: nn.Module) -> None:
    """Train mode, except for fully frozen submodules: a frozen encoder stays a fixed feature
    extractor (no dropout), as it will be at inference."""
    model.train()
    for module in model.children():
        parameters = list(module.parameters())
        if parameters and not any(p.requires_grad for p in parameters):
            module.eval()


def _pointwise_loss(error: torch.Tensor, loss: LossName) -> torch.Tensor:
    """Per-element loss of standardised errors. l1 / huber track MAPE (a mean absolute
    error of returns) more closely than mse, and crash days weigh less."""
    if loss == "mse":
        return error**2
    if loss == "l1":
        return error.abs()
    if loss == "huber":
        return nn.functional.huber_loss(error, torch.zeros_like(error), reduction="none")
    raise ValueError(f"unknown loss {loss!r}; known: mse, huber, l1")


def _validation_loss(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    scale: torch.Tensor,
    loss: LossName,
    batch: int = 2048,
) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(X), batch):
            error = (model(X[start : start + batch]) - y[start : start + batch]) / scale
            total += float(_pointwise_loss(error, loss).sum())
    return total / (len(X) * y.shape[1])


def train_network(
    model: nn.Module,
    data: SequenceData,
    config: TrainConfig | None = None,
    on_epoch: EpochCallback | None = None,
    lr_factor: float = 1.0,
) -> TrainResult:
    """Train on data's train windows with Adam, early-stop on validation loss, and leave the
    best weights (possibly the starting ones) in `model`. Only parameters with requires_grad
    are updated. Train windows are shuffled among themselves; val/test never touch a gradient."""
    config = config or TrainConfig()
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        return _train(model, data, config, on_epoch, lr_factor)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    model: nn.Module,
    data: SequenceData,
    config: TrainConfig,
    on_epoch: EpochCallback | None,
    lr_factor: float,
) -> TrainResult:
    set_determinism(config.seed)
    started = time.perf_counter()
    scale = _set_target_standardisation(model, data)
    if isinstance(getattr(model, "skill_weight", None), torch.Tensor):
        model.skill_weight.fill_(1.0)  # train the network itself; shrinkage is refitted after
    X_train, y_train = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    X_val, y_val = torch.from_numpy(data.X_val), torch.from_numpy(data.y_val)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("the model has no trainable parameters")
    optimizer = torch.optim.Adam(
        trainable, lr=config.learning_rate * lr_factor, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)

    result = TrainResult(initial_val_loss=_validation_loss(model, X_val, y_val, scale, config.loss))
    result.best_val_loss = result.initial_val_loss
    best_state = copy.deepcopy(model.state_dict())
    epochs_without_improvement = 0
    for epoch in range(1, config.epochs + 1):
        _train_mode(model)
        order = torch.randperm(len(X_train), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            error = (model(X_train[batch]) - y_train[batch]) / scale
            loss = _pointwise_loss(error, config.loss).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.gradient_clip:
                nn.utils.clip_grad_norm_(trainable, config.gradient_clip)
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        train_loss = total / len(order)
        val_loss = _validation_loss(model, X_val, y_val, scale, config.loss)
        result.train_losses.append(train_loss)
        result.val_losses.append(val_loss)
        result.epochs_run = epoch
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss)
        if epochs_without_improvement >= config.patience:
            result.stopped_early = epoch < config.epochs
            break
    model.load_state_dict(best_state)
    model.eval()
    if config.calibrate_skill:
        result.skill_weight = calibrate_skill_weight(model, data)
    result.seconds = time.perf_counter() - started
    return result


def calibrate_skill_weight(model: nn.Module, data: SequenceData) -> float:
    """Shrink the network's forecast toward persistence by the weight that fits validation best.

    Daily returns are mostly noise: a network whose forecasts do not beat "tomorrow = today" on
    held-out windows should not move far from it. The least-squares weight w in [0, 1] of the
    predicted log returns against the validation targets (closed form <p, y> / <p, p>) is stored
    in the network's `skill_weight` buffer; w = 0 means the model forecasts persistence. Fitted on
    validation only, never on test.
    """
    weight_buffer = getattr(model, "skill_weight", None)
    if not isinstance(weight_buffer, torch.Tensor):
        return 1.0
    weight_buffer.fill_(1.0)
    predicted = predict_returns(model, data.X_val)
    actual = np.asarray(data.y_val, dtype=np.float64)
    energy = float(np.sum(predicted * predicted))
    weight = float(np.clip(np.sum(predicted * actual) / energy, 0.0, 1.0)) if energy > 0 else 0.0
    weight_buffer.fill_(weight)
    return weight


def init_child(
    parent_state: dict[str, torch.Tensor],
    strategy: TransferStrategy,
    architecture: str,
    params: dict[str, object],
    fine_tune_lr_factor: float = TrainConfig.fine_tune_lr_factor,
) -> tuple[nn.Module, float]:
    """A child network and the factor for its learning rate.

    freeze: the parent's weights, encoder frozen (requires_grad False), the rest retrained.
    fine_tune: the parent's weights, everything retrained at fine_tune_lr_factor x the rate.
    scratch: a fresh network (parent ignored), the reference transfer must beat.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {list(STRATEGIES)}")
    model = build_network(architecture, **params)
    if strategy == "scratch":
        return model, 1.0
    try:
        model.load_state_dict(parent_state)
    except RuntimeError as error:
        raise ValueError(
            f"parent weights do not fit a {architecture} with {params}: {error}"
        ) from error
    if strategy == "freeze":
        for parameter in model.encoder.parameters():
            parameter.requires_grad_(False)
        return model, 1.0
    return model, fine_tune_lr_factor


def predict_returns(model: nn.Module, X: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Predicted log returns (windows, horizon) as float64, in eval mode, without gradients."""
    model.eval()
    windows = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    with torch.no_grad():
        parts = [model(windows[s : s + batch_size]) for s in range(0, len(windows), batch_size)]
    if not parts:
        return np.zeros((0, int(getattr(model, "horizon", 0))), dtype=np.float64)
    return torch.cat(parts).numpy().astype(np.float64)
