"""Networks: shapes, the shared encoder/head layout, and the drift starting point."""

from __future__ import annotations

import pytest
import torch

from stock_assets.modeling.networks import (
    NETWORKS,
    AttentionLSTMForecaster,
    LSTMForecaster,
    build_network,
)

PARAMS = {"n_features": 7, "horizon": 4, "hidden_size": 8, "num_layers": 2, "dropout": 0.1}


@pytest.mark.parametrize("architecture", sorted(NETWORKS))
def test_every_network_maps_windows_to_horizon_returns(architecture: str) -> None:
    torch.manual_seed(0)
    model = build_network(architecture, **PARAMS).eval()
    out = model(torch.randn(5, 12, 7))
    assert out.shape == (5, 4)
    assert isinstance(model.encoder, torch.nn.LSTM)
    assert model.encoder.num_layers == 2 and model.encoder.hidden_size == 8
    assert isinstance(model.head, torch.nn.Module)


@pytest.mark.parametrize("architecture", sorted(NETWORKS))
def test_an_untrained_network_predicts_the_training_drift(architecture: str) -> None:
    model = build_network(architecture, **PARAMS).eval()
    model.target_mean.copy_(torch.tensor([0.001, 0.002, 0.003, 0.004]))
    model.target_scale.copy_(torch.full((4,), 0.02))
    out = model(torch.randn(3, 12, 7))
    assert torch.equal(out, model.target_mean.expand(3, 4))


def test_attention_weights_are_a_distribution_over_time_steps() -> None:
    torch.manual_seed(0)
    model = AttentionLSTMForecaster(**PARAMS).eval()
    outputs, _ = model.encoder(torch.randn(2, 9, 7))
    weights = model.attention_weights(outputs)
    assert weights.shape == (2, 9)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(2))


def test_registry_and_unknown_architecture() -> None:
    assert NETWORKS == {"lstm": LSTMForecaster, "attention_lstm": AttentionLSTMForecaster}
    with pytest.raises(ValueError, match="unknown architecture 'gru'"):
        build_network("gru", **PARAMS)


def test_single_layer_lstm_accepts_dropout() -> None:
    model = LSTMForecaster(7, 4, hidden_size=8, num_layers=1, dropout=0.3)
    assert model.encoder.dropout == 0.0
