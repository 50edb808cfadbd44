"""The model registry as the Dagster UI shows it: versions with their lifecycle state, and the audit log."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from lifecycle.registry import ModelRegistry


def registry_metadata(registry: ModelRegistry, history: int = 15) -> dict[str, dg.MetadataValue]:
    """Every version's lifecycle state and the latest audit entries, as tables for the Dagster UI."""
    versions = pd.DataFrame(
        [
            {
                "version": v.version,
                "state": str(v.state),
                "aliases": ", ".join(v.aliases),
                "bento": v.tags.get("bento_tag", ""),
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
