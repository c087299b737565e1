"""Forecasting: the daily point-in-time forecasts and the performance log that scores them."""
