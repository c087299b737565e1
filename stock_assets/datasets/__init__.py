"""Datasets: point-in-time model features, chronological splits, train-only scalers, sliding windows."""
