"""Helpers for ``tools/model_converters``: reading foreign checkpoint containers."""
