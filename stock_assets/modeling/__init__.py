"""Modeling: networks, the training loop, transfer from the parent, baselines, metrics, promotion, tuning."""
