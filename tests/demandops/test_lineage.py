from __future__ import annotations

import pandas as pd
import pytest

from demandops import lineage
from demandops.contract import partition_dates, partition_path
from demandops.datasets import ensure_dataset
from demandops.errors import DatasetVersionError
from demandops.settings import Settings


def test_version_is_the_dvc_hash_and_changes_with_the_data(project_with_data: Settings) -> None:
    s = project_with_data
    first = lineage.track(s.project_dir, s.data)
    assert lineage.dataset_version(s.project_dir, s.data) == first
    path = partition_path(s.data, partition_dates(s.data)[-1])
    frame = pd.read_parquet(path)
    frame.loc[0, "units_sold"] += 1
    frame.to_parquet(path)
    with pytest.raises(DatasetVersionError, match="differs from data.dvc"):
        lineage.dataset_version(s.project_dir, s.data)
    assert lineage.track(s.project_dir, s.data) != first


def test_untracked_data_is_refused(project_with_data: Settings) -> None:
    with pytest.raises(DatasetVersionError, match="not tracked by DVC"):
        lineage.recorded_version(project_with_data.data)


def test_ensure_dataset_generates_tracks_pushes_and_pulls(settings: Settings) -> None:
    version = ensure_dataset(settings)
    assert lineage.dataset_version(settings.project_dir, settings.data) == version
    remote = settings.project_dir / ".dvcstore"
    assert any(remote.rglob("*")), "the local DVC remote received the data"
    # A clone without data/ gets exactly that version back from the remote.
    import shutil

    shutil.rmtree(settings.data)
    assert ensure_dataset(settings) == version


def test_ingestion_sees_exactly_an_older_checked_out_version(project_with_data: Settings) -> None:
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from demandops.datasets import append_days
    from pipelines.definitions import build_definitions
    from pipelines.partitions import register_days
    from pipelines.run import open_instance

    s = project_with_data
    old_version = lineage.track(s.project_dir, s.data)
    old_record = lineage.dvc_file(s.data).read_text()
    old_days = partition_dates(s.data)
    append_days(s.data, 3)
    assert lineage.track(s.project_dir, s.data) != old_version

    lineage.dvc_file(s.data).write_text(old_record)  # what `git checkout <rev> -- data.dvc` does
    assert lineage.checkout(s.project_dir, s.data) == old_version
    assert partition_dates(s.data) == old_days

    s.prepare_state()
    job = build_definitions(s).resolve_implicit_global_asset_job_def()
    with open_instance(s) as instance:
        register_days(instance, s)
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey("raw_sales")],
            tags={
                ASSET_PARTITION_RANGE_START_TAG: old_days[0].isoformat(),
                ASSET_PARTITION_RANGE_END_TAG: old_days[-1].isoformat(),
            },
        )
    materializations = result.asset_materializations_for_node("raw_sales")
    assert sorted(m.partition for m in materializations) == [d.isoformat() for d in old_days]
    assert {m.metadata["dataset_version"].value for m in materializations} == {old_version}
