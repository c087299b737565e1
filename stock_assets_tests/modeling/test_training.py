"""The training loop and transfer: determinism, early stopping, and what each strategy changes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from stock_assets.datasets.windows import SequenceData
from stock_assets.modeling.networks import build_network
from stock_assets.modeling.training import (
    TrainConfig,
    calibrate_skill_weight,
    init_child,
    predict_returns,
    set_determinism,
    train_network,
)

ARCH = "lstm"
QUICK = TrainConfig(epochs=3, batch_size=32, learning_rate=3e-3, patience=3, seed=7)


def network_params(data: SequenceData) -> dict[str, object]:
    return {"n_features": data.n_features, "horizon": data.horizon, "hidden_size": 8,
            "num_layers": 2, "dropout": 0.1}


@pytest.fixture(scope="module")
def parent_state(parent_data: SequenceData) -> dict[str, torch.Tensor]:
    set_determinism(0)
    parent = build_network(ARCH, **network_params(parent_data))
    result = train_network(parent, parent_data, replace(QUICK, loss="mse", learning_rate=1e-2))
    assert result.best_epoch >= 1  # the children below inherit trained, not initial, weights
    return {key: value.clone() for key, value in parent.state_dict().items()}


def encoder_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.encoder.state_dict().items()}


def head_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.head.state_dict().items()}


def test_same_seed_gives_identical_losses_and_predictions(child_data: SequenceData) -> None:
    runs = []
    for _ in range(2):
        set_determinism(11)
        model = build_network("attention_lstm", **network_params(child_data))
        result = train_network(model, child_data, QUICK)
        runs.append((result.train_losses, result.val_losses, predict_returns(model, child_data.X_test)))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
    assert len(runs[0][0]) == 3


def test_training_lowers_the_training_loss_and_reports_each_epoch(child_data) -> None:
    set_determinism(3)
    model = build_network(ARCH, **network_params(child_data))
    seen: list[tuple[int, float, float]] = []
    result = train_network(
        model, child_data, TrainConfig(epochs=4, batch_size=32, learning_rate=3e-3, patience=10),
        on_epoch=lambda epoch, train, val: seen.append((epoch, train, val)),
    )
    assert [epoch for epoch, _, _ in seen] == [1, 2, 3, 4] == list(range(1, result.epochs_run + 1))
    assert [val for _, _, val in seen] == result.val_losses
    assert result.train_losses[-1] < result.train_losses[0]
    assert result.seconds > 0
    # the model is left at its best epoch
    best = min([result.initial_val_loss, *result.val_losses])
    assert result.best_val_loss == best
    assert result.epochs_to_reach(best) == result.best_epoch


def test_early_stopping_stops_and_restores_the_best_weights(child_data: SequenceData) -> None:
    set_determinism(5)
    model = build_network(ARCH, **network_params(child_data))
    # noisy returns: validation stops improving after a few epochs
    config = TrainConfig(epochs=60, batch_size=16, learning_rate=1e-3, patience=2, seed=5,
                         loss="mse", calibrate_skill=False)
    result = train_network(model, child_data, config)
    assert result.stopped_early
    assert (result.best_epoch, result.epochs_run) == (4, 6)
    assert result.epochs_run - result.best_epoch == config.patience
    assert all(loss >= result.best_val_loss for loss in result.val_losses[result.best_epoch:])
    predicted = predict_returns(model, child_data.X_val)
    restored = np.mean(((predicted - child_data.y_val) / child_data.target_scale) ** 2)
    assert restored == pytest.approx(result.best_val_loss, rel=1e-5)


@pytest.mark.parametrize("strategy", ["freeze", "fine_tune"])
def test_transfer_starts_from_the_parents_weights(strategy, parent_state, child_data) -> None:
    child, _ = init_child(parent_state, strategy, ARCH, network_params(child_data))
    child_state = child.state_dict()
    assert child_state.keys() == parent_state.keys()
    for key, value in parent_state.items():
        assert torch.equal(child_state[key], value), key
    assert any(value.abs().sum() > 0 for value in encoder_tensors(child).values())


def test_scratch_ignores_the_parent(parent_state, child_data) -> None:
    set_determinism(99)
    child, factor = init_child(parent_state, "scratch", ARCH, network_params(child_data))
    assert factor == 1.0
    for key, value in encoder_tensors(child).items():
        assert not torch.equal(value, parent_state[f"encoder.{key}"]), key
    assert all(p.requires_grad for p in child.parameters())


def test_freeze_keeps_the_encoder_bit_identical_and_retrains_the_head(parent_state, child_data):
    child, factor = init_child(parent_state, "freeze", ARCH, network_params(child_data))
    assert factor == 1.0
    assert not any(p.requires_grad for p in child.encoder.parameters())
    assert all(p.requires_grad for p in child.head.parameters())
    encoder_before, head_before = encoder_tensors(child), head_tensors(child)
    result = train_network(child, child_data, QUICK, lr_factor=factor)
    assert result.epochs_run == 3
    for key, value in encoder_tensors(child).items():
        assert torch.equal(value, encoder_before[key]), key
    assert any(not torch.equal(value, head_before[key]) for key, value in head_tensors(child).items())


def test_fine_tune_changes_the_encoder_at_a_lower_learning_rate(parent_state, child_data) -> None:
    child, factor = init_child(parent_state, "fine_tune", ARCH, network_params(child_data),
                               fine_tune_lr_factor=0.2)
    assert factor == 0.2
    encoder_before = encoder_tensors(child)
    train_network(child, child_data, QUICK, lr_factor=factor)
    changed = [key for key, value in encoder_tensors(child).items()
               if not torch.equal(value, encoder_before[key])]
    assert changed and all(p.requires_grad for p in child.parameters())


def test_child_takes_its_own_return_scale(parent_state, parent_data, child_data) -> None:
    child, factor = init_child(parent_state, "freeze", ARCH, network_params(child_data))
    train_network(child, child_data, QUICK, lr_factor=factor)
    np.testing.assert_array_equal(child.target_scale.numpy(), child_data.target_scale)
    assert not np.array_equal(child_data.target_scale, parent_data.target_scale)


def test_bad_transfer_requests_are_clear_errors(parent_state, child_data) -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        init_child(parent_state, "distill", ARCH, network_params(child_data))
    wider = {**network_params(child_data), "hidden_size": 16}
    with pytest.raises(ValueError, match="parent weights do not fit"):
        init_child(parent_state, "freeze", ARCH, wider)


def test_skill_calibration_shrinks_toward_persistence_on_validation(child_data) -> None:
    set_determinism(5)
    model = build_network(ARCH, **network_params(child_data))
    config = TrainConfig(epochs=3, batch_size=16, learning_rate=2e-2, seed=5, calibrate_skill=False)
    train_network(model, child_data, config)
    raw = predict_returns(model, child_data.X_val)
    weight = calibrate_skill_weight(model, child_data)
    assert 0.0 <= weight <= 1.0 and float(model.skill_weight) == pytest.approx(weight)
    shrunk = predict_returns(model, child_data.X_val)
    np.testing.assert_allclose(shrunk, weight * raw, rtol=1e-5, atol=1e-9)
    y = child_data.y_val.astype(np.float64)
    # the least-squares weight can only lower the validation error of the raw forecast
    assert np.sum((shrunk - y) ** 2) <= np.sum((raw - y) ** 2) + 1e-12
    best = np.sum(raw * y) / np.sum(raw * raw)
    assert weight == pytest.approx(min(max(best, 0.0), 1.0), rel=1e-5)


def test_predict_returns_shape(child_data: SequenceData) -> None:
    model = build_network(ARCH, **network_params(child_data))
    predicted = predict_returns(model, child_data.X_test)
    assert predicted.shape == child_data.y_test.shape and predicted.dtype == np.float64
