"""The prediction log: answers queued without blocking, spooled by a background thread, compacted and
read back per target period, a full queue or a failed write counted and never raised to the request."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from monitoring.prediction_log import (
    SPOOL,
    PredictionLog,
    compact_spool,
    frame_rows,
    read_log,
    scored_forecasts,
    spool_line,
    write_rows,
)
from tests.conftest import wait_until

ORIGIN = date(2024, 3, 31)


def answer(*series: tuple[str, str], version: str = "3", horizon: int = 3, level: float = 10.0) -> bytes:
    """A /forecast answer as the service sends it (serving/schemas.py, ForecastResult)."""
    items = [
        {
            "store_id": store,
            "sku_id": sku,
            "origin_date": ORIGIN.isoformat(),
            "model_version": version,
            "degraded": False,
            "forecast": [
                {
                    "date": (ORIGIN + timedelta(days=h)).isoformat(),
                    "p10": level - 5 + h,
                    "p50": level + h,
                    "p90": level + 5 + h,
                }
                for h in range(1, horizon + 1)
            ],
        }
        for store, sku in series
    ]
    return json.dumps(items).encode()


def test_answers_are_written_by_the_thread_and_read_back_per_target(tmp_path: Path) -> None:
    written = []
    log = PredictionLog(tmp_path, capacity_bytes=1_000_000, flush_interval_s=0.05, on_written=written.append)
    log.start()
    assert log.record("r1", answer(("S1", "P1"), ("S1", "P2")))
    assert log.record("r2", answer(("S1", "P1"), level=20.0))  # the same series asked again, later
    wait_until(lambda: log.written == 2, "both answers written by the background thread")
    log.close()
    assert sum(written) == 2 and log.dropped == 0
    assert not list(tmp_path.glob("origin=*")), "the service only spools; the first reader compacts"

    second = ORIGIN + timedelta(days=2)
    rows = read_log(tmp_path, targets=[second], earliest_origin=ORIGIN - timedelta(days=3))
    assert sorted(zip(rows["request_id"], rows["sku_id"], strict=True)) == [("r1", "P1"), ("r1", "P2"), ("r2", "P1")]
    assert set(rows["step"]) == {2} and set(rows["origin_date"]) == {pd.Timestamp(ORIGIN)}
    first_p1 = rows[(rows["request_id"] == "r1") & (rows["sku_id"] == "P1")].iloc[0]
    assert (first_p1["p10"], first_p1["p50"], first_p1["p90"]) == (7.0, 12.0, 17.0)

    once = scored_forecasts(rows)
    assert len(once) == 2, "each (version, series, origin, target) is scored once"
    assert once[once["sku_id"] == "P1"]["request_id"].tolist() == ["r1"], "the first forecast logged counts"
    outside = read_log(tmp_path, targets=[second], earliest_origin=ORIGIN + timedelta(days=1))
    assert outside.empty, "origins before earliest_origin are not read"
    assert not list((tmp_path / SPOOL).iterdir()), "the spool is gone once compacted"
    again = read_log(tmp_path, targets=[second], earliest_origin=ORIGIN - timedelta(days=3))
    pd.testing.assert_frame_equal(again, rows)


def test_a_spool_file_compacted_twice_is_logged_once_and_a_corrupt_one_is_set_aside(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, capacity_bytes=1_000_000, flush_interval_s=60)
    log.record("r1", answer(("S1", "P1")))
    log.close()
    [spooled] = (tmp_path / SPOOL).glob("*.jsonl")
    kept = spooled.read_bytes()
    assert compact_spool(tmp_path) == 1
    spooled.write_bytes(kept)  # as when a reader died between writing the Parquet files and deleting the spool
    (tmp_path / SPOOL / "other-0.jsonl").write_bytes(b'{"request_id": "r2", "answer": [{"store_id"')
    assert compact_spool(tmp_path) == 2
    rows = read_log(tmp_path, targets=[ORIGIN + timedelta(days=1)], earliest_origin=ORIGIN)
    assert rows["request_id"].tolist() == ["r1"], "rewritten under the same name, not twice"
    assert sorted(p.name for p in (tmp_path / SPOOL).iterdir()) == ["other-0.corrupt"]


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    one = answer(("S1", "P1"))
    dropped = []
    line = spool_line("r0", time.time_ns() // 1_000_000, one)  # what one answer takes in the buffer
    log = PredictionLog(tmp_path, capacity_bytes=2 * len(line), flush_interval_s=60, on_dropped=dropped.append)
    assert [log.record(f"r{n}", one) for n in range(4)] == [True, True, False, False]
    assert log.dropped == 2 and sum(dropped) == 2
    assert log.flush() == 2
    assert log.record("r5", one), "a flushed queue takes answers again"
    log.close()
    rows = read_log(tmp_path, targets=[ORIGIN + timedelta(days=1)], earliest_origin=ORIGIN)
    assert sorted(rows["request_id"]) == ["r0", "r1", "r5"]


def test_a_failed_write_loses_the_queued_answers_counted_never_raised(tmp_path: Path) -> None:
    (tmp_path / "log").write_text("a file where the log's folder should be")
    log = PredictionLog(tmp_path / "log", capacity_bytes=1_000_000, flush_interval_s=60)
    assert log.record("r1", answer(("S1", "P1")))
    assert log.flush() == 0
    assert (log.dropped, log.written) == (1, 0)


def test_batch_scoring_rows_read_back_like_the_endpoint_s(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "store_id": ["S1"] * 3,
            "sku_id": ["P1"] * 3,
            "origin_date": pd.to_datetime([ORIGIN] * 3),
            "date": pd.to_datetime([ORIGIN + timedelta(days=h) for h in (3, 1, 2)]),  # in any order
            "p10": [3.0, 1.0, 2.0],
            "p50": [30.0, 10.0, 20.0],
            "p90": [300.0, 100.0, 200.0],
            "model_version": ["4"] * 3,
            "degraded": [False] * 3,
        }
    )
    write_rows(tmp_path, frame_rows("batch-1", frame), "batch-1")
    rows = read_log(tmp_path, targets=[ORIGIN + timedelta(days=h) for h in (1, 2, 3)], earliest_origin=ORIGIN)
    assert rows.sort_values("step")[["step", "p50"]].values.tolist() == [[1, 10.0], [2, 20.0], [3, 30.0]]


@pytest.mark.parametrize("targets", [[date(2030, 1, 1)]])
def test_an_empty_log_reads_as_no_rows_with_the_columns(tmp_path: Path, targets: list[date]) -> None:
    rows = read_log(tmp_path, targets=targets, earliest_origin=date(2029, 12, 1))
    assert rows.empty and {"model_version", "store_id", "sku_id", "date", "step", "p50"} <= set(rows.columns)
