"""Kept for imports written before the split: the registry lives in ``core.py`` and the handlers
in one module per subsystem. New code imports ``services.sm.apier.core``."""

from services.sm.apier.core import METHODS, Context, Handler, method

__all__ = ["METHODS", "Context", "Handler", "method"]
