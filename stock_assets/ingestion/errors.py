"""Errors every price source raises, so assets can report them the same way whatever the source."""


class PriceSourceError(RuntimeError):
    """The source could not deliver usable prices (unreachable, empty answer, corrupt file)."""


class UnknownTickerError(PriceSourceError, ValueError):
    """The source does not know this ticker."""
