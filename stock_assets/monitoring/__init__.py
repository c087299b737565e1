"""Monitoring: forecast and drift checks, the retraining sensors, the daily schedule and jobs."""
