"""Origins drawn per series: bounded, recent ones likelier, reproducible."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from demandops.frequency import period_ordinals
from training.dataset import Tensors
from training.origins import epoch_windows, origin_pool
from training.train import TrainConfig, _watched_validation, epoch_windows_per_series


def _entities(series: int, origins: int) -> pd.DataFrame:
    stamps = pd.date_range("2024-01-01", periods=origins, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "store_id": np.repeat([f"S{i // 10}" for i in range(series)], origins),
            "sku_id": np.repeat([f"K{i % 10}" for i in range(series)], origins),
            "event_timestamp": np.tile(stamps, series),
        }
    )


def test_the_pool_keeps_the_tail_and_a_recent_leaning_sample_of_the_rest() -> None:
    entities = _entities(series=40, origins=400)
    ordinal = period_ordinals(entities["event_timestamp"], "D")
    tail_start = ordinal.max() - 49
    pool = origin_pool(entities, frequency="D", tail_start=tail_start, per_series=30, half_life=60)
    pooled = period_ordinals(pool["event_timestamp"], "D")
    assert (pooled >= tail_start).sum() == 40 * 50  # every tail origin of every series
    older = pool[pooled < tail_start]
    assert (older.groupby(["store_id", "sku_id"]).size() == 30).all()
    # Weights halve every 60 periods back: the kept older origins are much younger than all of them.
    age = tail_start - period_ordinals(older["event_timestamp"], "D")
    assert np.median(age) < 0.5 * np.median(tail_start - ordinal[ordinal < tail_start])
    # A row is kept or not by its own key: a pool of some series is those series' part of the pool.
    some = entities[entities["store_id"] == "S1"]
    pd.testing.assert_frame_equal(
        origin_pool(some, frequency="D", tail_start=tail_start, per_series=30, half_life=60),
        pool[pool["store_id"] == "S1"].reset_index(drop=True),
    )
    assert origin_pool(entities, frequency="D", tail_start=tail_start, per_series=None, half_life=60) is entities


def test_each_epoch_draws_at_most_its_windows_per_series_recent_ones_likelier() -> None:
    series = torch.arange(30).repeat_interleave(200)
    age = torch.arange(200).flip(0).repeat(30)
    draw = lambda seed, most: epoch_windows(  # noqa: E731
        series, age, per_series=most, half_life=50, generator=torch.Generator().manual_seed(seed)
    )
    first, again, other = draw(0, 20), draw(0, 20), draw(1, 20)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert (torch.bincount(series[first]) == 20).all() and len(first.unique()) == len(first)
    assert age[first].double().median() < 0.6 * age.double().median()
    assert torch.equal(draw(0, 500), torch.arange(len(series)))  # more windows than rows: every row


def test_an_epoch_above_its_row_cap_gives_each_series_an_equal_share() -> None:
    series = torch.arange(50).repeat_interleave(40)  # 2,000 fitting rows
    config = TrainConfig(horizon=7, rows_per_epoch=500)
    assert epoch_windows_per_series(config, series) == 10
    assert epoch_windows_per_series(replace(config, rows_per_epoch=5_000), series) == 0  # under the cap: every row
    assert epoch_windows_per_series(replace(config, rows_per_epoch=0), series) == 0  # no cap
    assert epoch_windows_per_series(replace(config, windows_per_series=3), series) == 3  # asked for
    assert epoch_windows_per_series(replace(config, rows_per_epoch=20), series) == 1  # at least one each


def test_early_stopping_scores_a_fixed_sample_of_a_large_validation_window() -> None:
    rows = 1_000
    codes = torch.zeros(rows, dtype=torch.long)
    val = Tensors(
        store=torch.arange(rows), sku=codes, category=codes, numeric=torch.zeros(rows, 3),
        future=torch.zeros(rows, 7, 2), scale=torch.ones(rows), target=torch.zeros(rows, 7),
    )  # fmt: skip
    config = TrainConfig(horizon=7, validation_rows=100, seed=4)
    watched, again = _watched_validation(val, config), _watched_validation(val, config)
    assert len(watched) == 100 and len(watched.store.unique()) == 100
    assert torch.equal(watched.store, again.store)  # the same rows every epoch, from the seed
    assert not torch.equal(watched.store, _watched_validation(val, replace(config, seed=5)).store)
    assert _watched_validation(val, replace(config, validation_rows=0)) is val
    assert _watched_validation(val, replace(config, validation_rows=5_000)) is val
