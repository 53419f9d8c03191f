"""Warn mode's warnings: visible and filterable, never an error."""

from __future__ import annotations

import warnings


def warn(warning: Warning, filename: str, lineno: int) -> None:
    """Issue ``warning`` through the warnings machinery, so filters can ignore it and pytest
    lists it in its warnings summary, but with every ``error`` action read as ``always``.

    Warn mode never changes an outcome: under ``filterwarnings = error`` (or ``-W error``,
    even one naming our category) a raised warning would become a teardown error with a
    traceback through the plugin. Failing on a leak is what ``--resource-strict`` is for.
    """
    with warnings.catch_warnings():  # restores the filters; pytest's recorder stays in place
        warnings.filters = [
            ("always", *entry[1:]) if entry[0] == "error" else entry for entry in warnings.filters
        ]
        warnings.warn_explicit(warning, type(warning), filename, lineno)
