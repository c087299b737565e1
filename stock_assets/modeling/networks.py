"""Forecasting networks: windows of scaled features in, log returns for the next days out.

Why a module of its own: the training loop, transfer learning and tuning only rely on the shape
shared by every network here: an `encoder` (the LSTM, frozen by the `freeze` strategy) and
everything else (attention, `head`), which a child retrains. A network predicts standardised
returns, turned into log returns by its `target_mean` / `target_scale` buffers (the training
part's per-step mean and std, set by the training loop), and its output layer starts at zero: an
untrained network is the drift forecast, and departs from it only where training says so.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class _Forecaster(nn.Module):
    """Shared pieces: the LSTM encoder, the output scale and a zero-initialised output layer."""

    def __init__(
        self, n_features: int, horizon: int, hidden_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.horizon = horizon
        self.encoder = nn.LSTM(
            input_size=n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.register_buffer("target_mean", torch.zeros(horizon))
        self.register_buffer("target_scale", torch.ones(horizon))
        # Shrinkage toward persistence (a log return of 0), fitted on validation after training:
        # 1 = the network as trained, 0 = naive persistence. See training.calibrate_skill_weight.
        self.register_buffer("skill_weight", torch.ones(()))

    @staticmethod
    def _head(in_features: int, hidden_size: int, horizon: int, dropout: float) -> nn.Sequential:
        output = nn.Linear(hidden_size, horizon)
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)
        return nn.Sequential(
            nn.Dropout(dropout), nn.Linear(in_features, hidden_size), nn.GELU(), output
        )

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """(batch, time, features) -> (batch, horizon) log returns relative to the last close."""
        return self.skill_weight * (self.target_mean + self.normalized(windows) * self.target_scale)

    def normalized(self, windows: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Standardised returns (batch, horizon); each subclass defines it."""
        raise NotImplementedError


class LSTMForecaster(_Forecaster):
    """A stacked LSTM; the last time step's hidden state feeds a small MLP head."""

    def __init__(
        self,
        n_features: int,
        horizon: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(n_features, horizon, hidden_size, num_layers, dropout)
        self.head = self._head(hidden_size, hidden_size, horizon, dropout)

    def normalized(self, windows: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.encoder(windows)
        return self.head(outputs[:, -1, :])


class AttentionLSTMForecaster(_Forecaster):
    """A stacked LSTM with additive attention over its time steps: the head sees the attention
    summary beside the last hidden state, so a shock weeks back can weigh on the forecast."""

    def __init__(
        self,
        n_features: int,
        horizon: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(n_features, horizon, hidden_size, num_layers, dropout)
        self.attention = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, 1, bias=False)
        )
        self.head = self._head(2 * hidden_size, hidden_size, horizon, dropout)

    def attention_weights(self, outputs: torch.Tensor) -> torch.Tensor:
        """(batch, time) softmax weights over the encoder's outputs."""
        return torch.softmax(self.attention(outputs).squeeze(-1), dim=1)

    def normalized(self, windows: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.encoder(windows)
        weights = self.attention_weights(outputs)
        summary = torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)
        return self.head(torch.cat([summary, outputs[:, -1, :]], dim=1))


NETWORKS: dict[str, Callable[..., _Forecaster]] = {
    "lstm": LSTMForecaster,
    "attention_lstm": AttentionLSTMForecaster,
}


def build_network(architecture: str, **params: object) -> nn.Module:
    """A network from the NETWORKS registry; params are its constructor's keyword arguments
    (n_features, horizon, hidden_size, num_layers, dropout)."""
    try:
        network = NETWORKS[architecture]
    except KeyError:
        raise ValueError(
            f"unknown architecture {architecture!r}; known: {sorted(NETWORKS)}"
        ) from None
    return network(**params)
