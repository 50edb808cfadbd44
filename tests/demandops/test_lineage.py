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
