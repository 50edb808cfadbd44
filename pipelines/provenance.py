"""What the model is trained on: the dataset version, and the gate verdict of every day used."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from salesdata.gate import GateLedger

RAW_SALES = dg.AssetKey("raw_sales")


def raw_sales_lineage(instance: dg.DagsterInstance, ledger: GateLedger, partition_keys: Sequence[str]) -> dict:
    """Dataset version of the latest ingestion, and whether every day used passed the gate.

    A day is used when it has an accepted version in the lake; a quarantined day without one is
    left out. The checks passed when every day has a verdict and at least one day is used.
    """
    event = instance.get_latest_materialization_event(RAW_SALES)
    if event is None or event.asset_materialization is None:
        raise LookupError("raw_sales has never been materialized; materialize it before training")
    entries = {key: ledger.read(key) for key in partition_keys}
    unjudged = sorted(k for k, e in entries.items() if e is None)
    used = sorted(k for k, e in entries.items() if e and e.get("accepted"))
    quarantined = sorted(k for k, e in entries.items() if e and e["status"] == "quarantined")
    return {
        "dataset_version": str(event.asset_materialization.metadata["dataset_version"].value),
        "data_checks_passed": not unjudged and bool(used),
        "days_used": len(used),
        "days_quarantined": quarantined[:50],
        "days_without_verdict": unjudged[:10],
    }


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    """Metadata values of an asset's latest materialization."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    if event is None or event.asset_materialization is None:
        raise LookupError(f"{asset} has never been materialized")
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}
