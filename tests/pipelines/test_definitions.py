"""The code location: one connected graph, and a gate that really blocks."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from demandops import lineage
from demandops.contract import partition_dates, partition_path
from demandops.settings import Settings
from pipelines.definitions import build_definitions
from pipelines.run import open_instance

CHAIN = [
    "raw_sales",
    "sales_features",
    "online_features",
    "training_set",
    "trained_model",
    "model_evaluation",
    "bento",
]


@pytest.fixture
def tracked(project_with_data: Settings) -> Settings:
    lineage.track(project_with_data.project_dir, project_with_data.data)
    project_with_data.ensure_state_dirs()
    return project_with_data


def test_every_stage_is_one_connected_graph(tracked: Settings) -> None:
    defs = build_definitions(tracked)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == set(CHAIN)
    downstream_of_raw = {k.to_user_string() for k in graph.asset_dep_graph["downstream"][dg.AssetKey("raw_sales")]}
    assert {"sales_features", "training_set"} <= downstream_of_raw
    assert graph.get(dg.AssetKey("bento")).parent_keys == {
        dg.AssetKey("model_evaluation"),
        dg.AssetKey("trained_model"),
    }
    [check] = defs.resolve_asset_graph().asset_check_keys
    assert check.name == "check_raw_sales_expectations"


def test_a_bad_partition_blocks_everything_downstream(tracked: Settings) -> None:
    days = partition_dates(tracked.data)
    bad = partition_path(tracked.data, days[5])
    frame = pd.read_parquet(bad)
    frame.loc[0, "units_sold"] = -4.0
    frame.to_parquet(bad)
    lineage.track(tracked.project_dir, tracked.data)
    job = build_definitions(tracked).resolve_implicit_global_asset_job_def()
    with open_instance(tracked) as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=[dg.AssetKey("raw_sales"), dg.AssetKey("sales_features")],
            tags={
                ASSET_PARTITION_RANGE_START_TAG: days[0].isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: days[-1].isoformat(),
            },
        )
        assert not result.success
        [evaluation] = result.get_asset_check_evaluations()
        assert not evaluation.passed
        assert "expect_column_values_to_be_between(units_sold)" in str(evaluation.metadata["failed"].value)
        assert instance.get_latest_materialization_event(dg.AssetKey("sales_features")) is None


def test_launchpad_config_maps_onto_the_training_loop_config() -> None:
    from pipelines.assets.training import TrainingConfig
    from training.train import TrainConfig

    edited = TrainingConfig(epochs=3, learning_rate=0.01, device="cpu")
    config = TrainConfig(horizon=7, **edited.model_dump())
    assert (config.epochs, config.learning_rate, config.device) == (3, 0.01, "cpu")
    assert TrainingConfig().model_dump() == {k: getattr(TrainConfig(horizon=1), k) for k in TrainingConfig.model_fields}
