"""Strategy: does the forecaster make money after costs? A long/flat back-test over the performance log."""
