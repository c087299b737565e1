"""A trained model as files: weights, network config, the train-only scaler, its data window.

Why: MLflow stores these files per run and the registry points at them, so whatever loads a model
(the child's transfer, the champion's re-evaluation, the daily forecast) rebuilds exactly the
network and input scaling it was trained with. JSON + a torch state dict, no pickle.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from torch import nn

from stock_assets.datasets.windows import scaler_from_dict, scaler_to_dict
from stock_assets.modeling.networks import build_network

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "model.json"


@dataclass
class ModelBundle:
    ticker: str
    architecture: str
    network_params: dict[str, Any]  # build_network kwargs, incl. n_features and horizon
    feature_names: list[str]
    context_length: int
    horizon: int
    scaler: dict[str, Any]  # scaler_to_dict of the train-only feature scaler
    train_start: str  # first training anchor date (ISO)
    train_end: str  # last date a training target reached (ISO): later forecasts are out of sample
    # uncertainty.SpreadModel.to_dict(), fitted on the training part; None in bundles written
    # before forecasts had quantiles (such a model must be retrained to forecast).
    spread: dict[str, Any] | None = None
    state_dict: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    @classmethod
    def from_network(cls, network: nn.Module, *, ticker: str, architecture: str,
                     network_params: dict[str, Any], data, spread=None) -> ModelBundle:
        return cls(
            ticker=ticker,
            architecture=architecture,
            network_params=dict(network_params),
            feature_names=list(data.feature_names),
            context_length=data.context_length,
            horizon=data.horizon,
            scaler=scaler_to_dict(data.scaler),
            train_start=data.boundaries.train_first_anchor.isoformat(),
            train_end=data.boundaries.train_last_target.isoformat(),
            spread=spread.to_dict() if spread is not None else None,
            state_dict={k: v.detach().clone() for k, v in network.state_dict().items()},
        )

    def to_files(self) -> dict[str, bytes]:
        buffer = io.BytesIO()
        torch.save(self.state_dict, buffer)
        config = {k: v for k, v in asdict(self).items() if k != "state_dict"}
        return {WEIGHTS_FILE: buffer.getvalue(), CONFIG_FILE: json.dumps(config, indent=2).encode()}

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> ModelBundle:
        missing = [name for name in (WEIGHTS_FILE, CONFIG_FILE) if name not in files]
        if missing:
            raise ValueError(f"model artifacts are incomplete: missing {missing}")
        config = json.loads(files[CONFIG_FILE])
        state = torch.load(io.BytesIO(files[WEIGHTS_FILE]), weights_only=True)
        return cls(**config, state_dict=state)

    def network(self) -> nn.Module:
        network = build_network(self.architecture, **self.network_params)
        network.load_state_dict(self.state_dict)
        network.eval()
        return network

    def feature_scaler(self) -> StandardScaler:
        return scaler_from_dict(self.scaler)

    def spread_model(self):
        """The forecast-distribution model, or a clear error for a pre-quantile bundle."""
        from stock_assets.modeling.uncertainty import SpreadModel

        if self.spread is None:
            raise ValueError(
                f"model of {self.ticker} (trained to {self.train_end}) has no spread model: it "
                "predates quantile forecasts; rematerialize child_model to retrain it"
            )
        return SpreadModel.from_dict(self.spread)

    def incompatibility(self, data) -> str | None:
        """Why this model cannot read `data`'s windows (features, context, horizon), or None."""
        reasons = []
        if list(data.feature_names) != self.feature_names:
            ours, theirs = set(self.feature_names), set(data.feature_names)
            detail = ", ".join(
                part
                for part in (
                    f"missing {sorted(theirs - ours)}" if theirs - ours else "",
                    f"extra {sorted(ours - theirs)}" if ours - theirs else "",
                )
                if part
            )
            reasons.append(
                f"{len(self.feature_names)} features vs the windows' {len(data.feature_names)}"
                + (f" ({detail})" if detail else " (another order)")
            )
        if data.context_length != self.context_length:
            reasons.append(f"lookback {self.context_length} vs {data.context_length} sessions")
        if data.horizon != self.horizon:
            reasons.append(f"horizon {self.horizon} vs {data.horizon}")
        return "; ".join(reasons) or None

    def compatible_with(self, data) -> bool:
        """Can this model read `data`'s windows (same features, context and horizon)?"""
        return self.incompatibility(data) is None


def rescale_windows(X: np.ndarray, fitted: StandardScaler, target: StandardScaler) -> np.ndarray:
    """Windows scaled by `fitted` re-expressed in `target`'s scaling (same raw features).

    Needed to score a champion on the challenger's test windows: each model reads inputs scaled
    by the scaler of its own training part.
    """
    shape = X.shape
    raw = fitted.inverse_transform(X.reshape(-1, shape[-1]).astype(np.float64))
    return target.transform(raw).astype(np.float32).reshape(shape)


def weights_are_finite(network: nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in network.state_dict().values() if t.is_floating_point())
