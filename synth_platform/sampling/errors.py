"""The error a sampling request that cannot be served raises, shared by the sampling modules."""


class SourceError(ValueError):
    """A sampling request that cannot be served; the message says what to change."""
