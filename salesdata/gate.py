"""The ingestion gate: which days of raw sales are accepted, and a readable report for the rest.

A day is read from its file, checked by the Great Expectations suites and either accepted or
quarantined. The ledger keeps one verdict per day, and remembers the last accepted content of a
day even when a later version of its file is quarantined, so validated data is never lost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from demandops.contract import partition_dates, partition_path, read_master, read_sales_partition
from demandops.errors import DataContractError
from demandops.files import write_atomically, write_text_atomically
from demandops.settings import GateSettings
from salesdata.expectations import PARTITION_COLUMN, RATIO_COLUMN, ExpectationOutcome, SalesValidator, as_gated
from salesdata.plausibility import isolated_periods, series_max
from salesdata.profile import day_profiles, profile_ratios, profile_rows

UNREADABLE = "readable_partition_with_required_columns"
ISOLATED = "period_near_the_rest_of_the_data"
SERIES_MAX_FILE = "series_max.parquet"


@dataclass
class PeriodVerdict:
    day: str
    accepted: bool
    rows: int
    source_md5: str
    failures: list[dict] = field(default_factory=list)
    profile: dict = field(default_factory=dict)  # rows and mean units per category, for later days' bounds
    docs: list[str] = field(default_factory=list)  # GX Data Docs pages of a quarantined day


@dataclass
class GateResult:
    accepted: dict[str, pd.DataFrame]
    verdicts: dict[str, PeriodVerdict]
    series_max: pd.Series | None = None  # largest accepted units per series, these days included

    @property
    def quarantined(self) -> list[str]:
        return sorted(day for day, v in self.verdicts.items() if not v.accepted)


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest() if path.is_file() else ""


def _failure(outcome: ExpectationOutcome, count: int | None = None, sample: list | None = None) -> dict:
    return {
        "expectation": outcome.expectation,
        "column": outcome.column,
        "unexpected_count": outcome.unexpected_count if count is None else count,
        "sample": [str(v) for v in (outcome.sample if sample is None else sample)][:5],
    }


def run_gate(
    data_dir: Path,
    days: Iterable[date],
    *,
    validator: SalesValidator,
    categories: pd.Series,
    history: pd.DataFrame,
    gate: GateSettings,
    history_max: pd.Series | None = None,
    isolated: Iterable[date] = (),
) -> GateResult:
    """Verdicts for the given days: one fast check of all of them, halved down to the failing days on failure.

    `history_max` is the largest accepted units per series so far; `isolated` the days that lie
    too far from the rest of the data to be real.
    """
    verdicts: dict[str, PeriodVerdict] = {}
    frames: dict[str, pd.DataFrame] = {}
    far = set(isolated)
    for day in days:
        key, md5 = day.isoformat(), file_md5(partition_path(data_dir, day))
        if day in far:
            reason = f"{partition_path(data_dir, day)}: {key} lies over {gate.max_gap_years:g} years from other periods"
            verdicts[key] = _refused(key, md5, ISOLATED, "date", reason)
            continue
        try:
            frames[key] = read_sales_partition(data_dir, day).assign(**{PARTITION_COLUMN: pd.Timestamp(day)})
        except DataContractError as unreadable:
            verdicts[key] = _refused(key, md5, UNREADABLE, "", str(unreadable))
    if not frames:
        return GateResult({}, verdicts)
    frames = _with_plausibility(frames, history_max)
    profiles = day_profiles(frames, categories, None if history_max is None else history_max.index)
    ratios = profile_ratios(profiles, history, gate)
    profile_failures = _profile_failures(validator.validate_profile(ratios.drop(columns=["category"])), ratios)
    failed_rows = _row_failures(validator, frames)
    for key, frame in frames.items():
        row_failures = failed_rows.get(key, [])
        failures = row_failures + profile_failures.get(key, [])
        docs = validator.document("rows", frame, key) if row_failures else []
        if key in profile_failures:
            docs += validator.document("profile", ratios[ratios["day"] == key].drop(columns=["category"]), key)
        verdicts[key] = _verdict(data_dir, key, frame, failures, profiles[profiles["day"] == key], docs)
    gated = [PARTITION_COLUMN, RATIO_COLUMN]
    accepted = {k: f.drop(columns=gated) for k, f in frames.items() if verdicts[k].accepted}
    return GateResult(accepted, verdicts)


def _row_failures(validator: SalesValidator, frames: dict[str, pd.DataFrame]) -> dict[str, list[dict]]:
    """Each failing day's row failures, found by halving: a set of days that passes together passes
    one by one (the assumption the one check of all days rests on). A validation costs Great
    Expectations ~0.3 s whatever its size, so one bad day among N costs ~2·log2(N) checks, not N."""
    if len(frames) == 1:
        [(key, frame)] = frames.items()
        report = validator.validate_rows(frame)
        return {} if report.success else {key: [_failure(o) for o in report.failed]}
    if validator.validate_rows(pd.concat(frames.values(), ignore_index=True)).success:
        return {}
    keys = list(frames)
    halves = keys[: len(keys) // 2], keys[len(keys) // 2 :]
    return {k: v for half in halves for k, v in _row_failures(validator, {k: frames[k] for k in half}).items()}


def _verdict(
    data_dir: Path, key: str, frame: pd.DataFrame, failures: list[dict], profile: pd.DataFrame, docs: list[str]
) -> PeriodVerdict:
    """A validated day's verdict, with its profile (rows and mean units per category) for later bounds."""
    categories = zip(profile["category"], profile["category_mean"], profile["category_rows"], strict=True)
    return PeriodVerdict(
        key,
        not failures,
        len(frame),
        file_md5(partition_path(data_dir, date.fromisoformat(key))),
        failures,
        {"rows": len(frame), "categories": {c: [m, n] for c, m, n in categories}},
        docs,
    )


def _refused(key: str, md5: str, expectation: str, column: str, reason: str) -> PeriodVerdict:
    """The verdict on a day refused before its rows could be validated."""
    return PeriodVerdict(
        key, False, 0, md5, [{"expectation": expectation, "column": column, "unexpected_count": 0, "sample": [reason]}]
    )


def _with_plausibility(frames: dict[str, pd.DataFrame], history_max: pd.Series | None) -> dict[str, pd.DataFrame]:
    """Each day's rows with their units relative to the rest of their series, in this batch and before.

    Judged on the whole batch, but assigned to each day's own frame: the concatenation may change
    a column's type (one day's text units make every day's object), which the suite judges per day.
    """
    batch = pd.concat(frames.values(), ignore_index=True)
    ratios = as_gated(batch, batch[PARTITION_COLUMN], history_max)[RATIO_COLUMN].to_numpy()
    bounds = np.cumsum([0, *(len(f) for f in frames.values())])
    spans = zip(frames.items(), bounds[:-1], bounds[1:], strict=True)
    return {key: frame.assign(**{RATIO_COLUMN: ratios[start:end]}) for (key, frame), start, end in spans}


def _profile_failures(report, ratios: pd.DataFrame) -> dict[str, list[dict]]:
    """Failed profile expectations, attributed to the days of the offending profile rows."""
    by_day: dict[str, list[dict]] = {}
    for outcome in report.failed:
        offending = ratios.iloc[outcome.unexpected_index] if outcome.unexpected_index else ratios.iloc[0:0]
        for day, rows in offending.groupby("day"):
            sample = [f"{c}: ratio {r:.2f}" for c, r in zip(rows["category"], rows[outcome.column], strict=True)]
            by_day.setdefault(day, []).append(_failure(outcome, count=len(rows), sample=sample))
    return by_day


class GateLedger:
    """One JSON verdict per day; `accepted` keeps the last accepted version of that day."""

    def __init__(self, directory: Path):
        self.directory = directory

    def _path(self, day: str) -> Path:
        return self.directory / f"{day}.json"

    def read(self, day: str) -> dict | None:
        path = self._path(day)
        return json.loads(path.read_text()) if path.is_file() else None

    def record(self, verdict: PeriodVerdict, *, dataset_version: str, run_id: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        previous = self.read(verdict.day) or {}
        entry = {
            **asdict(verdict),
            "dataset_version": dataset_version,
            "run_id": run_id,
            "at": datetime.now(UTC).isoformat(),
        }
        write_text_atomically(
            self._path(verdict.day),
            json.dumps(
                {
                    "status": "accepted" if verdict.accepted else "quarantined",
                    "latest": entry,
                    "accepted": entry if verdict.accepted else previous.get("accepted"),
                },
                indent=2,
                default=str,
            ),
        )

    def needs_gate(self, data_dir: Path, days: Iterable[date]) -> list[date]:
        """Days never gated, or whose file changed since its latest verdict."""
        return [
            d
            for d in days
            if (e := self.read(d.isoformat())) is None
            or e["latest"]["source_md5"] != file_md5(partition_path(data_dir, d))
        ]

    def record_result(self, result: GateResult, *, dataset_version: str, run_id: str) -> None:
        """Every verdict of a gate run, and the largest accepted units per series for the next one."""
        for verdict in result.verdicts.values():
            self.record(verdict, dataset_version=dataset_version, run_id=run_id)
        if result.series_max is not None and len(result.series_max):
            write_atomically(self._series_max_path(), lambda tmp: result.series_max.to_frame().to_parquet(tmp))

    def _series_max_path(self) -> Path:
        return self.directory / SERIES_MAX_FILE

    def series_max(self) -> pd.Series | None:
        """The largest accepted units of every series gated so far; None before the first accepted day."""
        path = self._series_max_path()
        return pd.read_parquet(path)["units_sold"] if path.is_file() else None

    def history(self, before: str, days: int) -> pd.DataFrame:
        """Profiles of the latest accepted days before `before`, for the trailing bounds."""
        entries = [self.read(p.stem) for p in sorted(self.directory.glob("*.json")) if p.stem < before]
        accepted = [e["accepted"] for e in entries if e and e.get("accepted")][-days:]
        return profile_rows(accepted)


def gate_periods(
    data_dir: Path,
    days: list[date],
    ledger: GateLedger,
    gate: GateSettings,
    *,
    docs_dir: Path | None = None,
    keep: Callable[[dict[str, pd.DataFrame]], None] | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> GateResult:
    """Run the gate on `days`, `gate.batch_partitions` at a time so memory stays bounded on long ranges.

    The master data of data_dir defines the known ids; the trailing bounds start from the
    ledger's accepted history and move on with the days accepted here. With docs_dir, each
    quarantined day's validation is rendered there as GX Data Docs. With `keep`, each batch's
    accepted days are handed to it as soon as they are judged, and the result holds only the
    verdicts: memory then follows one batch, however long the range. `progress` hears, after each
    batch, how many days have been judged of how many.
    """
    days = sorted(days)
    if not days:
        return GateResult({}, {})
    stores, skus = read_master(data_dir, "stores"), read_master(data_dir, "skus")
    validator = SalesValidator(
        columns=_first_readable_columns(data_dir, days),
        stores=list(stores["store_id"]),
        skus=list(skus["sku_id"]),
        gate=gate,
        docs_dir=docs_dir,
    )
    categories = skus.set_index("sku_id")["category"]
    history = ledger.history(before=days[0].isoformat(), days=gate.trailing_partitions)
    isolated = isolated_periods(partition_dates(data_dir), gate.max_gap_years)
    result = GateResult({}, {}, ledger.series_max())
    for start in range(0, len(days), gate.batch_partitions):
        batch = run_gate(
            data_dir,
            days[start : start + gate.batch_partitions],
            validator=validator,
            categories=categories,
            history=history,
            gate=gate,
            history_max=result.series_max,
            isolated=isolated,
        )
        if keep is None:
            result.accepted.update(batch.accepted)
        else:
            keep(batch.accepted)
        result.verdicts.update(batch.verdicts)
        if batch.accepted:
            result.series_max = series_max(pd.concat(batch.accepted.values()), result.series_max)
        accepted = [asdict(v) for v in batch.verdicts.values() if v.accepted]
        parts = [frame for frame in (history, profile_rows(accepted)) if len(frame)]
        recent = pd.concat(parts, ignore_index=True) if parts else history
        history = recent[recent["day"].isin(sorted(set(recent["day"]))[-gate.trailing_partitions :])]
        if progress is not None:
            progress(min(start + gate.batch_partitions, len(days)), len(days))
    return result


def _first_readable_columns(data_dir: Path, days: list[date]) -> list[str]:
    """The columns of the first day whose file can be read: the optional ones the suite checks.

    An unreadable file is skipped here and quarantined by the gate, wherever it sits.
    """
    for day in days:
        try:
            return list(pq.read_schema(partition_path(data_dir, day)).names)
        except (pa.ArrowException, OSError):
            continue
    return []
