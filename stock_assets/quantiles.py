"""The names of a probabilistic forecast, shared by the pipeline, the API and the reports.

Defined in the lake contract (stock_assets.contract.tables), which serving/ imports; re-exported
here for the pipeline's modules.
"""

from stock_assets.contract.tables import INTERVALS, P_UP, QUANTILE_COLUMNS, QUANTILES

__all__ = ["INTERVALS", "P_UP", "QUANTILES", "QUANTILE_COLUMNS"]
