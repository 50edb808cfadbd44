"""The code location: one connected graph, a gate that quarantines, and a sensor that ingests only new days."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from demandops.contract import partition_dates, partition_path
from demandops.errors import DemandopsError
from demandops.settings import Settings
from feature_repo.freshness import online_lag
from pipelines.checks import check_raw_sales_expectations, check_training_set_nulls, revalidate_lake
from pipelines.definitions import build_definitions
from pipelines.lake import Lake
from pipelines.partitions import SALES_PERIODS, register_periods
from pipelines.resources import DemandopsResource
from pipelines.run import open_instance, refill_online_store, run_chain
from pipelines.sensors import REFILL_TAG, interrupted_work, new_sales_days, online_store_refill
from salesdata import dvc_versions
from salesdata.datasets import append_days
from tests.conftest import empty_sqlite_store

CHAIN = ["raw_sales", "sales_features", "online_features", "training_set", "trained_model", "model_evaluation", "bento"]
MONITORING = ["forecast_accuracy", "feature_drift"]
CHECKS = [check_raw_sales_expectations, check_training_set_nulls]
RAW, FEATURES, ONLINE = dg.AssetKey("raw_sales"), dg.AssetKey("sales_features"), dg.AssetKey("online_features")


@pytest.fixture
def tracked(project_with_data: Settings) -> Settings:
    dvc_versions.track(project_with_data.project_dir, project_with_data.data)
    project_with_data.prepare_state()
    return project_with_data


def ingest(settings: Settings, instance: dg.DagsterInstance, first: str, last: str, *assets: dg.AssetKey):
    register_periods(instance, settings)
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        asset_selection=list(assets),
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
    )


def test_every_stage_is_one_connected_graph(tracked: Settings) -> None:
    defs = build_definitions(tracked)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == {*CHAIN, *MONITORING}
    downstream_of_raw = {k.to_user_string() for k in graph.asset_dep_graph["downstream"][RAW]}
    assert {"sales_features", "training_set", "forecast_accuracy"} <= downstream_of_raw
    assert graph.get(dg.AssetKey("feature_drift")).parent_keys == {FEATURES}
    assert graph.get(dg.AssetKey("bento")).parent_keys == {
        dg.AssetKey("model_evaluation"),
        dg.AssetKey("trained_model"),
    }
    checks = {key.name: key.asset_key.to_user_string() for key in graph.asset_check_keys}
    assert checks == {
        "check_raw_sales_expectations": "raw_sales",
        "check_training_set_nulls": "training_set",
        "drift_within_bands": "feature_drift",  # warns and fails, never blocks
    }
    assert all(spec.blocking for check in CHECKS for spec in check.check_specs)
    assert defs.resolve_sensor_def("retraining_trigger").default_status == dg.DefaultSensorStatus.STOPPED
    assert defs.resolve_schedule_def("weekly_retraining").default_status == dg.DefaultScheduleStatus.STOPPED
    assert defs.resolve_sensor_def("new_sales_days") is not None
    assert defs.resolve_sensor_def("online_store_refill").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_sensor_def("interrupted_work").default_status == dg.DefaultSensorStatus.RUNNING
    with open_instance(tracked) as instance:
        context = dg.build_sensor_context(instance=instance, resources={"demandops": DemandopsResource(tracked)})
        assert interrupted_work(context).skip_message == "nothing was left unfinished"


def test_bad_day_is_quarantined_validated_data_untouched_and_a_fix_releases_it(tracked: Settings) -> None:
    days = partition_dates(tracked.data)
    first, last = days[0].isoformat(), days[-1].isoformat()
    bad_day = days[40]
    lake_file = tracked.lake_dir / "raw_sales" / f"{bad_day.isoformat()}.parquet"
    with open_instance(tracked) as instance:
        assert ingest(tracked, instance, first, last, RAW).success
        validated = lake_file.read_bytes()

        source = partition_path(tracked.data, bad_day)
        original = source.read_bytes()
        pd.read_parquet(source).assign(units_sold=-1.0).to_parquet(source, index=False)
        dvc_versions.track(tracked.project_dir, tracked.data)
        result = ingest(tracked, instance, first, last, RAW, FEATURES)
        assert result.success, "other days continue downstream"
        [raw] = [m for m in result.asset_materializations_for_node("raw_sales") if m.partition == bad_day.isoformat()]
        assert raw.metadata["quarantined_days"].value == [bad_day.isoformat()]
        report = raw.metadata["quarantine_reports"].value[bad_day.isoformat()]
        [failure] = report["failures"]
        assert failure["expectation"] == "expect_column_values_to_be_between" and failure["column"] == "units_sold"
        [page] = report["data_docs"]
        html = Path(page.removeprefix("file://")).read_text()
        assert "units_sold" in html and bad_day.isoformat() in page, "the GX Data Docs page shows the failed check"
        assert Path(raw.metadata["quarantine_data_docs"].value).is_file()
        assert lake_file.read_bytes() == validated, "the validated version of that day stays in the lake"
        assert instance.get_latest_materialization_event(FEATURES) is not None

        source.write_bytes(original)
        dvc_versions.track(tracked.project_dir, tracked.data)
        assert ingest(tracked, instance, bad_day.isoformat(), bad_day.isoformat(), RAW).success
        ledger_entry = (tracked.lake_dir / "raw_sales" / "_gate" / f"{bad_day.isoformat()}.json").read_text()
        assert '"status": "accepted"' in ledger_entry


def test_sensor_registers_and_ingests_only_new_days(tracked: Settings) -> None:
    resources = {"demandops": DemandopsResource.from_settings(tracked)}
    days = partition_dates(tracked.data)
    with open_instance(tracked) as instance:
        assert ingest(tracked, instance, days[0].isoformat(), days[-1].isoformat(), RAW).success
        idle = new_sales_days(dg.build_sensor_context(instance=instance, resources=resources))
        assert idle.run_requests == [] and idle.dynamic_partitions_requests == []

        new_days = [d.isoformat() for d in append_days(tracked.data, 3)]
        dvc_versions.track(tracked.project_dir, tracked.data)
        result = new_sales_days(dg.build_sensor_context(instance=instance, resources=resources))
        [added] = result.dynamic_partitions_requests
        assert added.partitions_def_name == SALES_PERIODS.name and list(added.partition_keys) == new_days
        [request] = result.run_requests
        assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == new_days[0]
        assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == new_days[-1]


def test_launchpad_config_is_the_training_loops_hyperparameters() -> None:
    from dataclasses import asdict

    from pipelines.assets.training import TrainingConfig
    from training.train import Hyperparameters

    assert TrainingConfig().model_dump(exclude={"processes"}) == asdict(Hyperparameters()), "one definition"
    edited = TrainingConfig(epochs=3, learning_rate=0.01, device="cpu", processes=2)
    assert Hyperparameters(**edited.model_dump(exclude={"processes"})).epochs == 3
    assert TrainingConfig.model_fields["patience"].description.startswith("Epochs without a better validation loss")


@pytest.mark.parametrize(
    ("training", "named"),
    [
        ({"epoch": 3}, "unknown key(s) ['epoch']; expected some of ['batch_size'"),
        ({"epochs": -1}, "epochs=-1: Input should be greater than or equal to 1"),
        ({"device": "gpu"}, "device='gpu': String should match pattern"),
    ],
)
def test_a_bad_training_config_is_refused_before_anything_runs(settings: Settings, training: dict, named: str):
    with pytest.raises(DemandopsError, match="training config: ") as refused:
        run_chain(settings, training=training)
    assert named in str(refused.value) and not settings.state.exists(), "nothing ran, nothing was created"


def test_appending_one_day_computes_and_materializes_only_that_day(tracked: Settings) -> None:
    days = partition_dates(tracked.data)
    with open_instance(tracked) as instance:
        assert ingest(tracked, instance, days[0].isoformat(), days[-1].isoformat(), RAW, FEATURES, ONLINE).success
        [new_day] = [d.isoformat() for d in append_days(tracked.data, 1)]
        dvc_versions.track(tracked.project_dir, tracked.data)
        result = ingest(tracked, instance, new_day, new_day, RAW, FEATURES, ONLINE)
        assert result.success
        [features] = result.asset_materializations_for_node("sales_features")
        meta = {k: v.value for k, v in features.metadata.items()}
        assert (meta["periods_written"], meta["first_period"], meta["last_period"]) == (1, new_day, new_day)
        lookback = DemandopsResource.from_settings(tracked).feature_spec().lookback
        assert meta["history_read_from"] == (date.fromisoformat(new_day) - timedelta(days=lookback)).isoformat()
        [online] = result.asset_materializations_for_node("online_features")
        meta = {k: v.value for k, v in online.metadata.items()}
        assert (meta["materialized_from"], meta["materialized_to"]) == (new_day, new_day)
        assert meta["rows_materialized"] == features.metadata["rows"].value
        store = DemandopsResource.from_settings(tracked).feature_store()
        served = store.get_online_features(
            features=["demand_history_fv:lag_1"], entity_rows=[{"store_id": "S000", "sku_id": "P0000"}]
        ).to_dict(include_event_timestamps=True)
        assert pd.Timestamp(served["lag_1__ts"][0], unit="s").date().isoformat() == new_day


def test_an_emptied_online_store_is_found_by_the_sensor_and_refilled_without_new_days(tracked: Settings) -> None:
    days = partition_dates(tracked.data)
    for day in days[-60:]:  # a series not sold lately: its latest feature row lies weeks back
        path = partition_path(tracked.data, day)
        sales = pd.read_parquet(path)
        sales[(sales["store_id"] != "S000") | (sales["sku_id"] != "P0000")].to_parquet(path, index=False)
    dvc_versions.track(tracked.project_dir, tracked.data)
    resource = DemandopsResource.from_settings(tracked)
    with open_instance(tracked) as instance:
        assert ingest(tracked, instance, days[0].isoformat(), days[-1].isoformat(), RAW, FEATURES, ONLINE).success
        context = dg.build_sensor_context(instance=instance, resources={"demandops": resource})
        idle = online_store_refill(context)
        assert idle.run_requests == [] and "holds all" in idle.skip_reason.skip_message

        emptied = empty_sqlite_store(
            tracked.feast_dir / "online_store.db"
        )  # what a Redis restarted without persistence holds
        assert emptied > 0
        lag = online_lag(resource.feature_store(), tracked.feast_dir)
        assert not lag.current and lag.period == days[-1].isoformat() and len(lag.behind) == lag.series
        [request] = online_store_refill(context).run_requests
        assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == days[0].isoformat(), "every series' latest row"
        assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == days[-1].isoformat()
        assert request.tags[REFILL_TAG] == "true"

    refilled = refill_online_store(tracked)  # `demandops features refill`, for installations without the daemon
    assert refilled.run_id is not None and "lacks complete" in refilled.before and "holds all" in refilled.after
    assert online_lag(resource.feature_store(), tracked.feast_dir).current
    with sqlite3.connect(tracked.feast_dir / "online_store.db") as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        refilled_rows = sum(connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
    assert refilled_rows == emptied, "every series is back, those not sold lately included"
    assert refill_online_store(tracked).run_id is None, "a current store is left alone"


def test_a_run_whose_new_periods_are_all_quarantined_finishes_on_the_accepted_data(tracked: Settings) -> None:
    days = partition_dates(tracked.data)
    with open_instance(tracked) as instance:
        assert ingest(tracked, instance, days[0].isoformat(), days[-1].isoformat(), RAW, FEATURES).success
        new_days = [d.isoformat() for d in append_days(tracked.data, 2)]
        for day in new_days:
            path = partition_path(tracked.data, date.fromisoformat(day))
            pd.read_parquet(path).assign(units_sold=-1.0).to_parquet(path, index=False)
        dvc_versions.track(tracked.project_dir, tracked.data)
        result = ingest(tracked, instance, new_days[0], new_days[-1], RAW, FEATURES)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        [raw, _] = result.asset_materializations_for_node("raw_sales")
        assert (raw.metadata["accepted_days"].value, raw.metadata["quarantined_days"].value) == (0, new_days)
        [check] = result.get_asset_check_evaluations()
        assert check.passed and check.metadata["quarantined_days"].value == new_days


def test_the_lake_check_reads_a_batch_at_a_time_and_names_a_row_tampered_with_in_the_lake(tracked: Settings) -> None:
    settings = tracked.model_copy(update={"gate": tracked.gate.model_copy(update={"batch_partitions": 7})})
    days = [d.isoformat() for d in partition_dates(settings.data)]
    with open_instance(settings) as instance:
        [clean] = ingest(settings, instance, days[0], days[-1], RAW).get_asset_check_evaluations()
    stored = sorted((settings.lake_dir / "raw_sales").glob("*.parquet"))
    assert clean.passed and clean.metadata["rows"].value == sum(len(pd.read_parquet(p)) for p in stored)
    assert len(stored) == len(days) > 3 * 7, "several batches"
    # A lake file changed after the gate (the check's reason to exist) fails the check, naming it.
    tampered = settings.lake_dir / "raw_sales" / f"{days[40]}.parquet"
    pd.read_parquet(tampered).assign(units_sold=-1.0).to_parquet(tampered, index=False)
    rows, _expectations, failed = revalidate_lake(Lake(settings.lake_dir), days, settings)
    assert rows == clean.metadata["rows"].value
    assert [f for f in failed if f.startswith("expect_column_values_to_be_between(units_sold)")], failed
