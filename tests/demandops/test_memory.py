"""Memory a stage freed goes back to the system, Arrow's pool included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from demandops.memory import release_free_memory

MB = 2**20


def test_a_parquet_read_and_dropped_gives_its_memory_back(tmp_path) -> None:
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({f"x{i}": np.arange(2_000_000, dtype="float64") for i in range(25)}), path)  # 400 MB
    process = psutil.Process()
    release_free_memory()
    before = process.memory_info().rss
    frame = pd.read_parquet(path)
    assert process.memory_info().rss - before > 300 * MB
    del frame
    release_free_memory()
    # Arrow's pool held the decoded columns after pandas copied them: 400 MB kept without release_unused.
    assert process.memory_info().rss - before < 100 * MB
