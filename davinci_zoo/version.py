"""The version of davinci-zoo (single source: read by the packaging metadata)."""

__version__ = '0.1.0'
