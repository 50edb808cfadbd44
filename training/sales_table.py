"""Raw sales held as one Arrow table sorted by series: strings stay packed (a third of what pandas
takes), and pandas is made only of the series a step asks for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from demandops.contract import SERIES_KEYS


def sorted_by_series(sales: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """The table sorted by store, SKU and date, and the first row of each series (then the row count)."""
    table = sales.sort_by([("store_id", "ascending"), ("sku_id", "ascending"), ("date", "ascending")])
    n = table.num_rows
    if n == 0:
        return table, np.zeros(1, dtype="int64")
    store, sku = table["store_id"], table["sku_id"]
    changed = pc.or_(
        pc.not_equal(store.slice(1), store.slice(0, n - 1)), pc.not_equal(sku.slice(1), sku.slice(0, n - 1))
    )
    return table, np.r_[0, np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1, n].astype("int64")


class SalesTable:
    """The sales of a catalogue, handed out series by series."""

    def __init__(self, sales: pa.Table):
        self.table, self.bounds = sorted_by_series(sales)
        starts = self.bounds[:-1]
        self.series = pd.MultiIndex.from_arrays([self.table[k].take(starts).to_pandas() for k in SERIES_KEYS])

    def of_series(self, series: pd.DataFrame) -> pd.DataFrame:
        """The sales of the series named in `series` (store_id, sku_id), as pandas."""
        wanted = np.flatnonzero(self.series.isin(pd.MultiIndex.from_frame(series[list(SERIES_KEYS)])))
        first, stop = self.bounds[wanted], self.bounds[wanted + 1]
        slices = [self.table.slice(a, b - a) for a, b in zip(first, stop, strict=True)] or [self.table.slice(0, 0)]
        return pa.concat_tables(slices).to_pandas()
