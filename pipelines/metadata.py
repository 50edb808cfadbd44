"""Metadata as a data scientist reads it in the Dagster UI: numbers rounded to what a reader needs, and
the model registry (versions with their lifecycle state, and the audit log)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
import pandas as pd

from lifecycle.evidence import bento_of
from lifecycle.registry import ModelRegistry

DIGITS = 4  # MLflow keeps the full values


def rounded(metadata: Mapping[str, Any], digits: int = DIGITS) -> dict[str, Any]:
    """Floats rounded (0.5281686475049859 reads as 0.5282); every other value as it is."""
    return {key: round(value, digits) if isinstance(value, float) else value for key, value in metadata.items()}


def registry_metadata(registry: ModelRegistry, history: int = 15) -> dict[str, dg.MetadataValue]:
    """Every version's lifecycle state and the latest audit entries, as tables for the Dagster UI."""
    versions = pd.DataFrame(
        [
            {
                "version": v.version,
                "state": str(v.state),
                "aliases": ", ".join(v.aliases),
                "bento": bento_of(v.tags),
            }
            for v in registry.versions()
        ]
    )
    entries = pd.DataFrame(
        [
            {
                "at": f"{e.at:%Y-%m-%d %H:%M:%S}",
                "version": e.version,
                "transition": f"{e.from_state} -> {e.to_state}",
                "outcome": e.outcome,
                "actor": e.actor,
                "reason": e.reason[:160],
            }
            for e in registry.audit.history(registry.model_name)[-history:]
        ]
    )
    return {
        "registry_versions": dg.MetadataValue.md(versions.to_markdown(index=False)),
        "lifecycle_history": dg.MetadataValue.md(entries.to_markdown(index=False)),
    }
