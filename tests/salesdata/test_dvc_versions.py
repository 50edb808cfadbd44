from __future__ import annotations

import pandas as pd
import pytest

from demandops.contract import partition_dates, partition_path
from demandops.errors import DatasetVersionError
from demandops.settings import Settings
from salesdata import dvc_versions
from salesdata.datasets import ensure_dataset


def test_version_is_the_dvc_hash_and_changes_with_the_data(project_with_data: Settings) -> None:
    s = project_with_data
    first = dvc_versions.track(s.project_dir, s.data)
    assert dvc_versions.dataset_version(s.project_dir, s.data) == first
    path = partition_path(s.data, partition_dates(s.data)[-1])
    frame = pd.read_parquet(path)
    frame.loc[0, "units_sold"] += 1
    frame.to_parquet(path)
    with pytest.raises(DatasetVersionError, match="differs from data.dvc"):
        dvc_versions.dataset_version(s.project_dir, s.data)
    assert dvc_versions.track(s.project_dir, s.data) != first


def test_untracked_data_is_refused(project_with_data: Settings) -> None:
    with pytest.raises(DatasetVersionError, match="not tracked by DVC"):
        dvc_versions.recorded_version(project_with_data.data)


def test_ensure_dataset_generates_tracks_pushes_and_pulls(settings: Settings) -> None:
    version = ensure_dataset(settings)
    assert dvc_versions.dataset_version(settings.project_dir, settings.data) == version
    remote = settings.project_dir / ".dvcstore"
    assert any(remote.rglob("*")), "the local DVC remote received the data"
    # A clone without data/ gets exactly that version back from the remote.
    import shutil

    shutil.rmtree(settings.data)
    assert ensure_dataset(settings) == version


def test_ingestion_sees_exactly_an_older_checked_out_version(project_with_data: Settings) -> None:
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from pipelines.definitions import build_definitions
    from pipelines.partitions import register_periods
    from pipelines.run import open_instance
    from salesdata.datasets import append_days

    s = project_with_data
    old_version = dvc_versions.track(s.project_dir, s.data)
    old_record = dvc_versions.dvc_file(s.data).read_text()
    old_days = partition_dates(s.data)
    append_days(s.data, 3)
    assert dvc_versions.track(s.project_dir, s.data) != old_version

    dvc_versions.dvc_file(s.data).write_text(old_record)  # what `git checkout <rev> -- data.dvc` does
    assert dvc_versions.checkout(s.project_dir, s.data) == old_version
    assert partition_dates(s.data) == old_days

    s.prepare_state()
    job = build_definitions(s).resolve_implicit_global_asset_job_def()
    with open_instance(s) as instance:
        register_periods(instance, s)
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
