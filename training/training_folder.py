"""A training set stored as a folder of Parquet parts, one per chunk of series, read part by part.

No stage holds the whole training set of a large catalogue: the training job reads the fitting
rows, the backtest the holdout rows and their history, the null check one part at a time. The
manifest (`value.json` beside the folder in the lake) names the folder and what the rows cannot
tell cheaply: how many complete origins the median series has before the origins were sampled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from demandops.contract import SERIES_KEYS
from demandops.files import write_atomically
from demandops.memory import release_arrow_pool

PART_GLOB = "part-*.parquet"
KIND = "training_set_folder"


@dataclass(frozen=True)
class TrainingSetFolder:
    directory: Path
    typical_origins: int = 0  # complete origins of the median series, before sampling (training/windows.py)
    rows: int = 0

    def manifest(self, relative_to: Path) -> dict:
        return {**asdict(self), "directory": str(self.directory.relative_to(relative_to)), "kind": KIND}

    @staticmethod
    def is_manifest(value: object) -> bool:
        return isinstance(value, dict) and value.get("kind") == KIND

    @classmethod
    def from_manifest(cls, manifest: dict, relative_to: Path) -> TrainingSetFolder:
        directory = relative_to / manifest["directory"]
        if not directory.is_dir():
            raise FileNotFoundError(f"the training set folder {directory} named by its manifest is missing")
        return cls(directory=directory, typical_origins=int(manifest["typical_origins"]), rows=int(manifest["rows"]))

    def parts(self) -> list[Path]:
        return sorted(self.directory.glob(PART_GLOB))

    def write_part(self, number: int, frame: pd.DataFrame) -> Path:
        target = self.directory / f"part-{number:05d}.parquet"
        return write_atomically(target, lambda partial: frame.to_parquet(partial, index=False))

    def iter_parts(
        self, *, columns: Sequence[str] | None = None, since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
    ) -> Iterator[pd.DataFrame]:  # fmt: skip
        """Each part's rows with origins from `since` to `until` (both included)."""
        window = since is not None or until is not None
        for path in self.parts():
            wanted = None if columns is None else {*columns, *(["event_timestamp"] if window else [])}
            present = None if wanted is None else [c for c in pq.read_schema(path).names if c in wanted]
            frame = pd.read_parquet(path, columns=present)
            release_arrow_pool()  # the part's Arrow buffers are pandas' now: Arrow's pool would keep them
            if window:
                keep = pd.Series(True, index=frame.index)
                keep &= frame["event_timestamp"] >= since if since is not None else True
                keep &= frame["event_timestamp"] <= until if until is not None else True
                frame = frame[keep].reset_index(drop=True)
            yield frame if columns is None else frame[[c for c in columns if c in frame]]

    def head(self, rows: int) -> pd.DataFrame:
        """The first rows of the first part, read without the rest of it."""
        batches = pq.ParquetFile(self.parts()[0]).iter_batches(batch_size=rows)
        return next(batches).to_pandas()

    def read(self, **window) -> pd.DataFrame:
        """The rows of every part (within `since`/`until`, see iter_parts), as one frame."""
        frames = list(self.iter_parts(**window))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def origins(self) -> np.ndarray:
        """Every origin of the set, sorted."""
        stamps = [pq.read_table(p, columns=["event_timestamp"]).column(0).unique().to_pandas() for p in self.parts()]
        return np.sort(pd.concat(stamps).unique()) if stamps else np.array([], dtype="datetime64[ns]")

    def series(self) -> pd.DataFrame:
        """Every (store_id, sku_id) of the set."""
        keys = list(SERIES_KEYS)
        frames = [pd.read_parquet(p, columns=keys).drop_duplicates() for p in self.parts()]
        return pd.concat(frames, ignore_index=True).drop_duplicates(ignore_index=True)

    def null_shares(self, columns: Sequence[str]) -> dict[str, float]:
        """Each column's share of null values over every part (1 when the set has no row)."""
        total = pd.Series(0, index=list(columns), dtype="int64")
        for frame in self.iter_parts(columns=columns):
            total += frame.isna().sum()
        return (total / self.rows).to_dict() if self.rows else dict.fromkeys(columns, 1.0)


@dataclass(frozen=True)
class RowsUpTo:
    """The rows of a folder up to an origin, read as a frame is where the backtest reads them: a few
    columns of every row (`rows[columns]`), whole rows at some positions (`rows.take(positions)`)."""

    folder: TrainingSetFolder
    until: pd.Timestamp

    def __len__(self) -> int:
        return sum(len(part) for part in self.folder.iter_parts(columns=["event_timestamp"], until=self.until))

    def __getitem__(self, columns: list[str]) -> pd.DataFrame:
        return self.folder.read(columns=columns, until=self.until)

    def take(self, positions: np.ndarray) -> pd.DataFrame:
        """The rows at these (sorted) positions of the rows up to `until`, parts read one at a time."""
        taken, offset = [], 0
        for part in self.folder.iter_parts(until=self.until):
            inside = positions[(positions >= offset) & (positions < offset + len(part))] - offset
            taken.append(part.iloc[inside])
            offset += len(part)
        return pd.concat(taken, ignore_index=True)
