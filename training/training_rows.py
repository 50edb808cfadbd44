"""A training set turned into the tensors the loop trains on, one part at a time.

The rows come as one frame, or as a training-set folder (training/training_folder.py) read part by
part: a first pass over the few light columns finds the origins, the series and the categories;
a second turns each part into tensors and lets the part go. Memory is then the tensors (about
860 bytes a row for daily data) plus one part, not the frame, its split copies and their
float64 intermediates besides (15 GB for the 2.5M fitting rows of 25,000 series).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from demandops.contract import SERIES_KEYS
from demandops.frequency import period_ordinals
from training.bundle import BundleMeta
from training.dataset import Tensors, origin_split, to_tensors
from training.features import CATEGORICAL_FEATURES, FeatureSpec
from training.training_folder import TrainingSetFolder

Rows = pd.DataFrame | TrainingSetFolder


@dataclass
class PreparedRows:
    meta: BundleMeta
    fit: Tensors
    val: Tensors
    fit_series: torch.Tensor  # a code per fitting row: rows of one series share it
    fit_age: torch.Tensor  # periods before the latest fitting origin
    seen: pd.DataFrame  # store_id, sku_id of the series with fitting rows
    rows_read: int


def parts_of(rows: Rows, *, until: pd.Timestamp | None = None, columns: list[str] | None = None) -> Iterator:
    """The rows (up to `until`) as frames: the frame itself, or the folder's parts."""
    if isinstance(rows, TrainingSetFolder):
        yield from rows.iter_parts(until=until, columns=columns)
        return
    frame = rows if until is None else rows[rows["event_timestamp"] <= until]
    yield frame if columns is None else frame[[c for c in columns if c in frame]]


def prepare_rows(
    rows: Rows, *, horizon: int, validation_origins: int, spec: FeatureSpec, until: pd.Timestamp | None,
    meta_of, tensors_of,
) -> PreparedRows:  # fmt: skip
    """Tensors of the fitting and validation rows; `meta_of(stores, skus, vocabularies)` makes the
    bundle's meta, `tensors_of(frame, meta)` a part's tensors."""
    light = [*SERIES_KEYS, "event_timestamp", *CATEGORICAL_FEATURES]
    origins, stores, skus, vocab = set(), set(), set(), {}
    for part in parts_of(rows, until=until, columns=light):
        origins.update(part["event_timestamp"].unique())
        stores.update(part["store_id"].unique())
        skus.update(part["sku_id"].unique())
        for name in [c for c in CATEGORICAL_FEATURES if c in part]:
            vocab.setdefault(name, set()).update(part[name].dropna().astype(str).unique())
    meta = meta_of(sorted(stores), sorted(skus), {name: sorted(values) for name, values in vocab.items()})
    last_fit, first_val = origin_split(np.array(sorted(origins)), horizon, validation_origins)
    fits, vals, ages, seen, read = [], [], [], [], 0
    for part in parts_of(rows, until=until):
        fit_part = part[part["event_timestamp"] <= last_fit]
        fits += [tensors_of(fit_part, meta)] if len(fit_part) else []
        val_part = part[part["event_timestamp"] >= first_val]
        vals += [tensors_of(val_part, meta)] if len(val_part) else []
        ages.append(period_ordinals(fit_part["event_timestamp"], spec.frequency))
        seen.append(fit_part[list(SERIES_KEYS)].drop_duplicates())
        read += len(part)
    fit = Tensors.concat(fits)
    ordinals = np.concatenate(ages)
    return PreparedRows(
        meta=meta,
        fit=fit,
        val=Tensors.concat(vals),
        fit_series=fit.store * len(meta.skus) + fit.sku,
        fit_age=torch.from_numpy(ordinals.max(initial=0) - ordinals),
        seen=pd.concat(seen, ignore_index=True).drop_duplicates(ignore_index=True),
        rows_read=read,
    )


def part_tensors(frame: pd.DataFrame, meta: BundleMeta, horizon: int, spec: FeatureSpec) -> Tensors:
    return to_tensors(
        frame,
        store_index={s: i for i, s in enumerate(meta.stores)},
        sku_index={s: i for i, s in enumerate(meta.skus)},
        horizon=horizon,
        with_target=True,
        spec=spec,
        vocab=meta.vocabularies,
        seasonal_period=meta.seasonal_period,
    )
