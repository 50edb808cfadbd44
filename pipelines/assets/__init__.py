"""One module per stage of the chain."""
# No `from __future__ import annotations` in Dagster asset modules: Dagster inspects the real annotation objects.
