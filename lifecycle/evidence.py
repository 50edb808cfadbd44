"""The tags of a model version in the MLflow registry: each name defined here once, with its writer
and its reader.

The chain writes them (registration, the backtest beside the champion, the Bento build); the
lifecycle guards, the CLIs, the service and the Dagster UI read them. A tag's name appears
nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STATE_TAG = "lifecycle.state"
DATASET_VERSION_TAG = "dataset_version"
FEATURE_SERVICE_TAG = "feature_service"
BENTO_TAG = "bento_tag"
TRAINED_UNTIL_TAG = "training.last_origin"  # the training set's last origin: the end of its window
RETRAIN_REASON_TAG = "training.retrain_reason"  # why the loop started the training, when it did
PIPELINE_RUN_TAG = "pipeline.run_id"
# The challenger scored in shadow on the champion's live window (pipelines/shadow.py), for the live guard.
LIVE_TAGS = {
    "live_compared_champion_version": "live.champion_version",
    "live_challenger_wape": "live.challenger_wape",
    "live_champion_wape": "live.champion_wape",
    "live_forecasts": "live.forecasts",
    "live_window": "live.window",
}  # the Dagster run that registered the version and works on it
# The Production version the backtest scored beside this one, and both versions' latest-window WAPE;
# or why the champion could not be scored (the promotion guard then waives the comparison).
CHAMPION_VERSION_TAG = "backtest.champion_version"
CHAMPION_WAPE_TAG = "backtest.champion_latest_window_wape"
VS_CHAMPION_TAG = "backtest.latest_window_wape_vs_champion"
CHAMPION_SKIPPED_TAG = "backtest.champion_skipped"
CHAMPION_SKIPPED_VERSION_TAG = "backtest.champion_skipped_version"

Tags = Mapping[str, str]


def registration_tags(
    *, dataset_version: str, feature_service: str, pipeline_run: str, trained_until: str = "", retrain_reason: str = ""
) -> dict[str, str]:
    """What a new version records of its training data, why it was trained, and which run carries it
    through the lifecycle."""
    tags = {DATASET_VERSION_TAG: dataset_version, FEATURE_SERVICE_TAG: feature_service, PIPELINE_RUN_TAG: pipeline_run}
    if trained_until:
        tags[TRAINED_UNTIL_TAG] = trained_until
    if retrain_reason:
        tags[RETRAIN_REASON_TAG] = retrain_reason
    return tags


def trained_until_of(tags: Tags) -> str | None:
    """The last origin the version was trained on (ISO date); None for versions from before it was recorded."""
    return tags.get(TRAINED_UNTIL_TAG)


def registration_evidence(tags: Tags) -> dict[str, str]:
    """What the Trained transition's audit entry records: why the loop retrained, when it did."""
    return {"retrain_reason": tags[RETRAIN_REASON_TAG]} if RETRAIN_REASON_TAG in tags else {}


def pipeline_run_of(tags: Tags) -> str:
    """The Dagster run that registered the version; "" for versions registered otherwise or before."""
    return tags.get(PIPELINE_RUN_TAG, "")


def bento_tags(bento_tag: str) -> dict[str, str]:
    return {BENTO_TAG: bento_tag}


def champion_tags(metrics: Mapping[str, float], champion_version: str | None, unscorable: str) -> dict[str, str]:
    """The backtest's comparison with the champion (metrics from training.evaluate), or why there is none."""
    if champion_version is None:
        return {}
    if unscorable or "champion_latest_window_wape" not in metrics:
        return {
            CHAMPION_SKIPPED_TAG: unscorable or "no sales by series both versions know",
            CHAMPION_SKIPPED_VERSION_TAG: champion_version,
        }
    return {
        CHAMPION_VERSION_TAG: champion_version,
        CHAMPION_WAPE_TAG: str(metrics["champion_latest_window_wape"]),
        VS_CHAMPION_TAG: str(metrics["latest_window_wape_vs_champion"]),
    }


def state_of(tags: Tags, default: str) -> str:
    return tags.get(STATE_TAG, default)


def bento_of(tags: Tags) -> str:
    """The version's Bento tag, "" when none was built."""
    return tags.get(BENTO_TAG, "")


def dataset_version_of(tags: Tags) -> str:
    return tags.get(DATASET_VERSION_TAG, "")


def promotion_evidence(tags: Tags) -> dict[str, Any]:
    """What the Staged -> Production guards read from the challenger's tags."""
    evidence: dict[str, Any] = {
        "dataset_version": tags.get(DATASET_VERSION_TAG),
        "bento_tag": tags.get(BENTO_TAG),
        "compared_champion_version": tags.get(CHAMPION_VERSION_TAG),
        "champion_skipped": tags.get(CHAMPION_SKIPPED_TAG),
        "champion_skipped_version": tags.get(CHAMPION_SKIPPED_VERSION_TAG),
    }
    compared = {"latest_window_wape_vs_champion": VS_CHAMPION_TAG, "champion_latest_window_wape": CHAMPION_WAPE_TAG}
    for key, tag in compared.items():
        if tag in tags:
            evidence[key] = float(tags[tag])
    for key, tag in LIVE_TAGS.items():
        if tag in tags:
            evidence[key] = tags[tag]
    return evidence


def live_tags(
    *, champion_version: str, challenger_wape: float, champion_wape: float, forecasts: int, window: str
) -> dict:
    """The shadow comparison with the champion on its live window, as the challenger's tags."""
    values = {
        "live_compared_champion_version": champion_version,
        "live_challenger_wape": repr(challenger_wape),
        "live_champion_wape": repr(champion_wape),
        "live_forecasts": str(forecasts),
        "live_window": window,
    }
    return {LIVE_TAGS[key]: value for key, value in values.items()}
