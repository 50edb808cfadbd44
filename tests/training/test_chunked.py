"""The backtest's bounded-memory paths give what the whole-set paths give: chunks small enough that
every step takes several of them, compared with one chunk of everything."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import poisson

from tests.conftest import DAILY
from training.dataset import split_by_origin, to_tensors
from training.evaluate import evaluate_backtest, residual_rows, statistical_sample, write_residuals
from training.gbm import GBMConfig, QuantileGBM
from training.oracle import oracle_forecast
from training.sales_table import SalesTable
from training.statistical import statistical_forecasts, window_origins
from training.statistical_engines import IN_PROCESS
from training.train import TrainConfig, train_forecaster
from training.training_folder import RowsUpTo, TrainingSetFolder


@pytest.fixture(scope="module")
def split(small_training_set: pd.DataFrame):
    fit, holdout = split_by_origin(small_training_set, horizon=7, holdout_origins=21)
    config = TrainConfig(horizon=7, epochs=1, validation_origins=14, seed=0)
    bundle = train_forecaster(fit, config, feature_service="test", dataset_version="test", spec=DAILY).bundle
    return bundle, fit, holdout


def test_the_network_forecasts_the_same_in_batches(split) -> None:
    bundle, _fit, holdout = split
    whole = bundle.predict(holdout, batch_rows=len(holdout))
    batched = bundle.predict(holdout, batch_rows=50)
    assert len(holdout) > 3 * 50 and batched.shape == whole.shape
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-5)


def test_gradient_boosting_learns_from_the_sampled_pairs_only(split) -> None:
    bundle, fit, _holdout = split
    sampled = QuantileGBM(bundle.meta, GBMConfig(max_iter=5, max_examples=2_000)).fit(fit)
    assert (sampled.examples, sampled.subsampled) == (2_000, True)
    whole = QuantileGBM(bundle.meta, GBMConfig(max_iter=5, max_examples=10**9)).fit(fit)
    assert (whole.examples, whole.subsampled) == (len(fit) * 7, False)
    # The design built for a sample of pairs is the whole design's rows for those pairs.
    pairs = np.sort(np.random.default_rng(1).choice(len(fit) * 7, 500, replace=False))
    needed, position = np.unique(pairs // 7, return_inverse=True)
    local = position * 7 + pairs % 7
    np.testing.assert_array_equal(sampled._design(fit.iloc[needed], local), sampled._design(fit)[pairs])
    # and the whole design is each row's inputs repeated per step, then the step, then its covariates.
    tensors = to_tensors(
        fit, store_index=bundle.store_index, sku_index=bundle.sku_index, horizon=7, with_target=False,
        spec=bundle.meta.spec, vocab=bundle.meta.vocabularies,
    )  # fmt: skip
    ids = np.stack([tensors.store.numpy(), tensors.sku.numpy(), tensors.category.numpy()], axis=1)
    per_row = np.repeat(np.concatenate([ids, tensors.numeric.numpy()], axis=1), 7, axis=0)
    steps = np.tile(np.arange(1, 8), len(fit))[:, None]
    future = tensors.future.numpy().reshape(len(fit) * 7, -1)
    np.testing.assert_array_equal(sampled._design(fit), np.concatenate([per_row, steps, future], axis=1))


def test_gradient_boosting_predicts_the_same_in_chunks(split) -> None:
    bundle, fit, holdout = split
    baseline = QuantileGBM(bundle.meta, GBMConfig(max_iter=5, max_examples=2_000)).fit(fit)
    whole = baseline.predict(holdout, chunk_rows=len(holdout))
    chunked = baseline.predict(holdout, chunk_rows=40)
    assert len(holdout) > 3 * 40
    np.testing.assert_array_equal(chunked, whole)


def _catalogue(series: int) -> pd.DataFrame:
    keys = [(f"S{i % 7}", f"P{i:05d}") for i in range(series)]
    return pd.DataFrame(
        {
            "store_id": [k[0] for k in keys] * 2,
            "sku_id": [k[1] for k in keys] * 2,
            "mover": (["fast", "fast", "intermittent", "new"] * series)[:series] * 2,
        }
    )


def test_the_statistical_sample_keeps_each_mover_class_share_and_is_stable() -> None:
    rows = _catalogue(2_000)
    mask = statistical_sample(rows, most=200)
    assert mask.shape == (len(rows),)
    picked = rows[mask].drop_duplicates(["store_id", "sku_id"])
    assert len(picked) == 200
    assert picked["mover"].value_counts().to_dict() == {"fast": 100, "intermittent": 50, "new": 50}
    # Both rows of a picked series are in; the same catalogue, shuffled, gives the same sample.
    assert mask.sum() == 400
    shuffled = rows.sample(frac=1.0, random_state=3)
    again = shuffled[statistical_sample(shuffled, most=200)].drop_duplicates(["store_id", "sku_id"])
    assert set(map(tuple, again[["store_id", "sku_id"]].to_numpy())) == set(
        map(tuple, picked[["store_id", "sku_id"]].to_numpy())
    )
    assert statistical_sample(rows, most=2_000).all() and statistical_sample(rows, most=None).all()


def test_statistical_forecasts_of_a_sample_equal_those_fitted_beside_every_series(small_data, split) -> None:
    _bundle, _fit, holdout = split
    origins = window_origins(holdout["event_timestamp"].to_numpy(), 7)
    starts = holdout[holdout["event_timestamp"].isin(origins)][["store_id", "sku_id", "event_timestamp"]]
    starts = starts.reset_index(drop=True)
    names = ("AutoETS", "SeasonalNaive")
    every = statistical_forecasts(small_data.sales, starts, frequency="D", horizon=7, period=7, names=names)
    few = starts[starts["sku_id"].isin(sorted(starts["sku_id"].unique())[:2])]
    sampled = statistical_forecasts(small_data.sales, few, frequency="D", horizon=7, period=7, names=names)
    for name in names:
        assert np.isfinite(sampled[name]).all()
        np.testing.assert_allclose(sampled[name], every[name][few.index.to_numpy()], rtol=1e-9)


def test_the_backtest_says_what_its_baselines_were_fitted_on(small_data, split) -> None:
    bundle, fit, holdout = split
    series = len(holdout[["store_id", "sku_id"]].drop_duplicates())
    common = dict(period=7, gbm=GBMConfig(max_iter=5, max_examples=3_000), sales=small_data.sales)
    sampled = evaluate_backtest(bundle, fit, holdout, statistical=("AutoETS",), statistical_series=6, **common)
    every = evaluate_backtest(bundle, fit, holdout, statistical=("AutoETS",), **common)
    assert series > 6
    assert (sampled.metrics["statistical_series"], sampled.metrics["statistical_series_sampled"]) == (6, 1)
    assert (every.metrics["statistical_series"], every.metrics["statistical_series_sampled"]) == (series, 0)
    assert sampled.metrics["statistical_rows"] < every.metrics["statistical_rows"]
    assert sampled.metrics["gradient_boosting_examples"] == 3_000 and sampled.metrics["gradient_boosting_subsampled"]
    # The rest of the backtest does not depend on the sample.
    assert sampled.metrics["wape"] == every.metrics["wape"]


def _in_parts(frame: pd.DataFrame, directory) -> TrainingSetFolder:
    """The frame as a training-set folder of four parts of whole series, as the chain builds it."""
    folder = TrainingSetFolder(directory)
    series = frame.groupby(["store_id", "sku_id"], sort=False).ngroup()
    for number, part in enumerate(np.array_split(np.unique(series), 4)):
        folder.write_part(number, frame[series.isin(part)])
    return folder


def test_the_backtest_reads_the_same_from_a_folder_and_a_sales_table(small_data, split, tmp_path) -> None:
    bundle, fit, holdout = split
    frame = fit.sort_values(["store_id", "sku_id", "event_timestamp"], ignore_index=True)
    folder = _in_parts(frame, tmp_path / "set")
    table = pa.Table.from_pandas(small_data.sales.sample(frac=1.0, random_state=1), preserve_index=False)
    common = dict(period=7, gbm=GBMConfig(max_iter=5, max_examples=3_000), statistical=("AutoETS",))
    whole = evaluate_backtest(bundle, frame, holdout, sales=small_data.sales, statistical_series=6, **common)
    until = frame["event_timestamp"].max()
    parts = evaluate_backtest(
        bundle, RowsUpTo(folder, until), holdout, sales=SalesTable(table), statistical_series=6, **common
    )
    assert len(RowsUpTo(folder, until)) == len(frame) and whole.metrics["gradient_boosting_subsampled"]
    assert parts.metrics == whole.metrics
    pd.testing.assert_frame_equal(parts.table, whole.table)


def test_training_from_a_folder_of_parts_equals_training_from_the_frame(split, tmp_path) -> None:
    _bundle, fit, holdout = split
    frame = fit.sort_values(["store_id", "sku_id", "event_timestamp"], ignore_index=True)
    folder = _in_parts(frame, tmp_path / "set")
    until = frame["event_timestamp"].max() - pd.Timedelta(days=3)  # the job reads up to its last fitting origin
    config = TrainConfig(horizon=7, epochs=2, validation_origins=14, seed=0, windows_per_series=20)
    kwargs = dict(feature_service="test", dataset_version="test", spec=DAILY)
    from_parts = train_forecaster(folder, config, until=until, **kwargs)
    from_frame = train_forecaster(frame[frame["event_timestamp"] <= until], config, **kwargs)
    assert len(folder.parts()) == 4 and from_parts.rows_read == from_frame.rows_read
    assert from_parts.history == from_frame.history
    np.testing.assert_array_equal(from_parts.bundle.predict(holdout), from_frame.bundle.predict(holdout))


def test_the_oracle_gathered_from_its_grid_is_each_target_days_poisson_quantile(small_data, split) -> None:
    _bundle, _fit, holdout = split
    targets = holdout[["store_id", "sku_id"]].loc[holdout.index.repeat(7)].reset_index(drop=True)
    origins = pd.to_datetime(holdout["event_timestamp"]).dt.tz_localize(None).to_numpy()
    targets["date"] = (origins[:, None] + np.arange(1, 8).astype("timedelta64[D]")).ravel()
    expected = small_data.oracle.assign(date=pd.to_datetime(small_data.oracle["date"]))
    rate = targets.merge(expected, on=["store_id", "sku_id", "date"], how="left")["expected_units"].fillna(0.0)
    one_by_one = np.stack([poisson.ppf(q, rate.to_numpy()) for q in (0.1, 0.5, 0.9)], axis=-1).reshape(-1, 7, 3)
    assert (rate > 0).mean() > 0.5
    np.testing.assert_array_equal(oracle_forecast(holdout, small_data.oracle, horizon=7), one_by_one)


def test_the_residuals_are_the_same_in_chunks(split, tmp_path) -> None:
    bundle, fit, holdout = split
    evaluation = evaluate_backtest(bundle, fit, holdout, period=7, gbm=None)
    write_residuals(evaluation, tmp_path / "residuals.parquet", chunk_rows=50)
    assert len(evaluation.rows) > 3 * 50
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "residuals.parquet"), residual_rows(evaluation))


@dataclass
class _HoldoutWitness:
    """The in-process engine, noting whether the holdout frame still lives when the statistical fits start."""

    holdout: weakref.ref
    alive: list[bool] = field(default_factory=list)

    def forecast(self, engine, history: pd.DataFrame, horizon: int) -> pd.DataFrame:
        self.alive.append(self.holdout() is not None)
        return IN_PROCESS.forecast(engine, history, horizon)


def test_the_holdout_is_dropped_once_scored_before_the_statistical_fits(small_data, split) -> None:
    bundle, fit, holdout = split
    handed = [holdout.copy()]  # handed over as the chain hands it: no reference kept here
    witness = _HoldoutWitness(weakref.ref(handed[0]))
    evaluation = evaluate_backtest(
        bundle, fit, handed.pop(), period=7, gbm=None, sales=small_data.sales, statistical=("AutoETS",),
        statistical_series=6, statistical_on=witness,
    )  # fmt: skip
    assert witness.alive and not any(witness.alive), "the holdout frame outlived its scoring"
    assert evaluation.metrics["statistical_series"] == 6
