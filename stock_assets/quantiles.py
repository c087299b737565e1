"""The names of a probabilistic forecast, shared by the pipeline, the API and the reports.

Why a module of its own, with no dependencies: `serving/` and the agents read these columns from
the lake and must not import training code to learn their names.
"""

QUANTILES: tuple[float, ...] = (0.05, 0.10, 0.25, 0.50, 0.75, 0.90, 0.95)
# daily_forecast's predicted close at each quantile: close_q05 ... close_q95 (monotone in q).
QUANTILE_COLUMNS: tuple[str, ...] = tuple(f"close_q{round(q * 100):02d}" for q in QUANTILES)
# Central intervals by nominal coverage in percent: (lower column, upper column).
INTERVALS: dict[int, tuple[str, str]] = {
    50: ("close_q25", "close_q75"),
    80: ("close_q10", "close_q90"),
    90: ("close_q05", "close_q95"),
}
# The probability that a step's close ends above the forecast's last close.
P_UP = "p_up"
