"""The one root of every error atomforge raises on purpose. The CLI prints any of them as one line; each
subclass also keeps the standard base it had (ValueError, RuntimeError) so callers' `except` clauses still hold."""
from __future__ import annotations


class AtomforgeError(Exception):
    """Root of atomforge's own errors."""


class UsageError(AtomforgeError):
    """Bad input from the user: a missing folder, a wrong value, an unknown name."""
