"""What the lake reader answers when something is not there, or not usable: 404s and 503s.

Why its own module: routes and the error handlers import these without the reader itself.
"""

from __future__ import annotations


class LakeLookupError(LookupError):
    """Base of the answers 'this is not in the lake' (404s); `detail` is safe to show a user."""

    def __init__(self, detail: str, *, ticker: str | None = None, asset: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.ticker = ticker
        self.asset = asset


class UnknownTickerError(LakeLookupError):
    """No price data at all for this ticker: the pipeline has never seen it."""


class NotMaterializedError(LakeLookupError):
    """The ticker is known but the asset (or the requested date of it) was never materialized."""


class LakeDataError(RuntimeError):
    """A file exists but cannot be used (corrupt, or not the contract's schema): a 503, not a 404."""

    def __init__(self, detail: str, *, asset: str):
        super().__init__(detail)
        self.detail = detail
        self.asset = asset
