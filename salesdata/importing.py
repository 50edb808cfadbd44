"""Bring your own data: a user's sales file (CSV or Parquet) checked against the contract.

Every problem is reported with the file and the lines it was found on (CSV line numbers count
the header as line 1; Parquet rows count from 1), and all problems of a file are reported at
once. Nothing is written here: `datasets.import_sales` writes only a file that passed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from demandops.contract import (
    ID_PATTERN,
    OPTIONAL_SALES_COLUMNS,
    REQUIRED_SALES_COLUMNS,
    SERIES_KEYS,
    read_parquet_file,
    repeated_names,
)
from demandops.errors import DataContractError
from demandops.frequency import PERIOD_NAMES, Frequency, period_start
from demandops.settings import GateSettings
from salesdata.plausibility import dates_text, isolated_periods, units_vs_reference

SUFFIXES = (".csv", ".parquet", ".pq")
TRUE_WORDS = {"1", "true", "t", "yes", "y"}
FALSE_WORDS = {"0", "false", "f", "no", "n"}
MAX_LINES_NAMED = 5
SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}


@dataclass
class UserTable:
    """A user file read as text (CSV) or typed columns (Parquet), with line numbers for messages."""

    path: Path
    frame: pd.DataFrame
    first_line: int  # the line or row number of the frame's first row

    def lines(self, mask: pd.Series | np.ndarray) -> str:
        """'lines 3, 7 (and 12 more)' for the rows where mask holds."""
        positions = np.flatnonzero(np.asarray(mask))
        named = ", ".join(str(p + self.first_line) for p in positions[:MAX_LINES_NAMED])
        more = f" (and {len(positions) - MAX_LINES_NAMED} more)" if len(positions) > MAX_LINES_NAMED else ""
        word = "line" if self.path.suffix == ".csv" else "row"
        return f"{word}{'s' if len(positions) > 1 else ''} {named}{more}"

    def examples(self, column: str, mask) -> str:
        values = self.frame.loc[np.asarray(mask), column].head(3).tolist()
        return ", ".join(repr(v) for v in values)


def read_table(path: Path, *, delimiter: str = ",") -> UserTable:
    """A CSV (every cell as text, so nothing is silently coerced) or a Parquet file."""
    if not path.is_file():
        raise DataContractError(f"{path} does not exist or is not a file")
    if path.suffix not in SUFFIXES:
        raise DataContractError(f"{path}: unsupported file type {path.suffix!r}; expected one of {list(SUFFIXES)}")
    if path.stat().st_size == 0:
        raise DataContractError(f"{path} is empty; expected a header and at least one row")
    try:
        if path.suffix == ".csv":
            return _read_csv(path, delimiter)
        table = read_parquet_file(path)
    except UnicodeDecodeError as exc:
        raise DataContractError(_not_utf8(path, exc)) from exc
    except (pd.errors.ParserError, pa.ArrowException, OSError) as exc:
        raise DataContractError(f"{path} could not be parsed: {exc}") from exc
    _refuse_repeated(path, table.column_names)
    return UserTable(path, table.to_pandas(), first_line=1)


def _read_csv(path: Path, delimiter: str) -> UserTable:
    # utf-8-sig: a byte-order mark (as spreadsheet programs write) is not part of the first column's name.
    with path.open(encoding="utf-8-sig", newline="") as header_line:
        header = next(csv.reader(header_line, delimiter=delimiter), [])
    _refuse_repeated(path, [name.strip() for name in header])
    frame = pd.read_csv(
        path, sep=delimiter, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig"
    )
    return UserTable(path, frame.rename(columns=str.strip), first_line=2)


def _refuse_repeated(path: Path, names: list[str]) -> None:
    repeated = repeated_names(names)
    if repeated:
        raise DataContractError(f"{path} has more than one column named {repeated}; expected each column once")


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> str:
    """Where the first byte that is not UTF-8 sits, so that the user can find it (the decoder's own
    offset counts from the start of the chunk it was given, not of the file)."""
    with path.open("rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as found:
                where = f"line {number}, column {found.start + 1} holds the byte 0x{line[found.start]:02x}"
                break
        else:
            where = f"{exc.reason}"
    return (
        f"{path} is not UTF-8 text: {where}; save the file as UTF-8 "
        f"(a Latin-1 file converts with: iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name})"
    )


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def _numbers(table: UserTable, column: str, problems: list[str], *, positive: bool = False) -> pd.Series:
    raw = table.frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = (values.isna() | np.isinf(values)) & ~_blank(raw)
    if bad.any():
        problems.append(f"{column} is not a finite number on {table.lines(bad)}: {table.examples(column, bad)}")
    out_of_range = (values <= 0) if positive else (values < 0)
    if out_of_range.any():
        expected = "> 0" if positive else ">= 0"
        problems.append(
            f"{column} must be {expected}, found {table.examples(column, out_of_range)} on {table.lines(out_of_range)}"
        )
    return values


def _flags(table: UserTable, column: str, problems: list[str]) -> pd.Series:
    raw = table.frame[column]
    if raw.dtype == bool:
        return raw
    words = raw.astype(str).str.strip().str.lower()
    bad = ~words.isin(TRUE_WORDS | FALSE_WORDS) & ~_blank(raw)
    if bad.any():
        problems.append(f"{column} is not a true/false flag on {table.lines(bad)}: {table.examples(column, bad)}")
    return words.isin(TRUE_WORDS)


def _dates(table: UserTable, date_format: str | None, problems: list[str]) -> pd.Series:
    raw = table.frame["date"]
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = raw.dt.tz_localize(None) if raw.dt.tz is not None else raw
    else:
        text = raw.astype(str).str.strip()
        dates = pd.to_datetime(text, format=date_format or "%Y-%m-%d", errors="coerce")
        bad = dates.isna()
        if bad.any():
            expected = f"the format {date_format!r}" if date_format else "ISO dates YYYY-MM-DD"
            problems.append(
                f"date is not in {expected} on {table.lines(bad)}: {table.examples('date', bad)}"
                + ("" if date_format else "; the file mixes date formats, or pass --date-format for another one")
            )
    timed = dates.notna() & (dates != dates.dt.normalize())
    if timed.any():
        problems.append(f"date carries a time of day on {table.lines(timed)}; expected plain dates")
    return dates


def stray_headers(table: UserTable) -> pd.Series:
    """Rows that repeat the header, as concatenating CSV exports leaves them."""
    frame = table.frame
    if frame.empty or not all(pd.api.types.is_object_dtype(frame[c]) for c in frame.columns):
        return pd.Series(False, index=frame.index)
    return (frame.astype(str).apply(lambda col: col.str.strip() == col.name)).sum(axis=1) >= 2


def read_user_sales(
    path: Path,
    frequency: Frequency,
    *,
    limits: GateSettings,
    date_format: str | None = None,
    delimiter: str = ",",
    known_periods: Iterable[date] = (),
) -> pd.DataFrame:
    """The sales in `path`, typed and dated by period label, or a DataContractError naming every problem.

    `limits` bounds plausible units and dates; `known_periods` are the dataset's periods an append joins.
    """
    table = read_table(path, delimiter=delimiter)
    frame = table.frame
    missing = [c for c in REQUIRED_SALES_COLUMNS if c not in frame.columns]
    if missing:
        raise DataContractError(
            f"{path} lacks required column(s) {missing}; found {list(frame.columns)}, "
            f"expected {list(REQUIRED_SALES_COLUMNS)} and optionally {list(OPTIONAL_SALES_COLUMNS)}"
            + _delimiter_hint(frame.columns, delimiter)
        )
    headers = stray_headers(table)
    if headers.any():
        raise DataContractError(
            f"{path}: the header row is repeated on {table.lines(headers)} (files concatenated with their "
            "headers?); remove those lines and import again"
        )
    if frame.empty:
        raise DataContractError(f"{path} has a header but no rows")
    problems: list[str] = []
    out = pd.DataFrame(index=frame.index)
    dates = _dates(table, date_format, problems)
    out["date"] = period_start(dates.fillna(pd.Timestamp(0)), frequency)
    for key in SERIES_KEYS:
        ids = frame[key].astype(str).str.strip()
        bad = _blank(frame[key]) | ~ids.str.fullmatch(ID_PATTERN.strip("^$"))
        if bad.any():
            problems.append(
                f"{key} is empty or not an id (letters, digits, _ . : -, at most 64) on {table.lines(bad)}: "
                f"{table.examples(key, bad)}"
            )
        out[key] = ids
    units = _numbers(table, "units_sold", problems)
    if _blank(frame["units_sold"]).any():
        problems.append(f"units_sold is empty on {table.lines(_blank(frame['units_sold']))}")
    out["units_sold"] = units
    for column in OPTIONAL_SALES_COLUMNS:
        if column in frame.columns:
            out[column] = (
                _flags(table, column, problems)
                if column == "on_promo"
                else _numbers(table, column, problems, positive=column == "price")
            )
    if not problems:
        problems += _implausible(table, out, limits, known_periods) + _period_problems(table, out, dates, frequency)
    if problems:
        raise DataContractError(f"{path} breaks the sales contract:\n  - " + "\n  - ".join(problems))
    return out.sort_values(["date", *SERIES_KEYS], ignore_index=True)


def _period_problems(table: UserTable, out: pd.DataFrame, dates: pd.Series, frequency: Frequency) -> list[str]:
    """One row per series and period, and no period that has not started yet."""
    problems = []
    period = PERIOD_NAMES[frequency]
    duplicated = out.duplicated(["date", *SERIES_KEYS], keep=False)
    if duplicated.any():
        hint = "" if frequency == "D" else f" (is it daily data? aggregate to one row per {period} first)"
        problems.append(f"more than one row per store, SKU and {period} on {table.lines(duplicated)}{hint}")
    this_period = period_start([datetime.now(UTC).date()], frequency)[0]
    future = out["date"] > this_period
    if future.any():
        problems.append(f"dates in the future on {table.lines(future)}: {dates_text(dates[future].dt.date.head(3))}")
    return problems


def _implausible(table: UserTable, out: pd.DataFrame, limits: GateSettings, known: Iterable[date]) -> list[str]:
    """Units beyond any real sale, and periods years away from the rest of the data (plausibility.py)."""
    problems = []
    units = out["units_sold"]
    if (huge := units > limits.max_units).any():
        problems.append(
            f"units_sold above {limits.max_units:g} on {table.lines(huge)}: {table.examples('units_sold', huge)}"
        )
    elif (spike := units_vs_reference(out) > limits.max_units_vs_history).any():
        problems.append(
            f"units_sold over {limits.max_units_vs_history:g} times every other value of its series on "
            f"{table.lines(spike)}: {table.examples('units_sold', spike)} (a unit error or a corrupt export?)"
        )
    periods = set(out["date"].dt.date)
    far = set(isolated_periods(periods | set(known), limits.max_gap_years)) & periods
    if far:
        lonely = out["date"].dt.date.isin(far)
        problems.append(
            f"dates over {limits.max_gap_years:g} years from any other period on {table.lines(lonely)}: "
            f"{dates_text(sorted(far))} (a typo in the year?)"
        )
    return problems


def _delimiter_hint(columns: pd.Index, delimiter: str) -> str:
    """A header read as one column that holds another separator: say which, and how to read it."""
    if len(columns) != 1:
        return ""
    other = next((sep for sep in SEPARATORS if sep != delimiter and sep in str(columns[0])), None)
    if other is None:
        return ""
    used = SEPARATORS.get(delimiter, repr(delimiter))
    return f"; the header looks separated by {SEPARATORS[other]}, not {used}: pass --delimiter {other!r}"


def read_user_master(path: Path, key: str, ids: set[str], optional: tuple[str, ...]) -> pd.DataFrame:
    """A store or SKU master file: unique ids covering every id in the sales, plus known optional columns."""
    table = read_table(path)
    frame = table.frame
    if key not in frame.columns:
        raise DataContractError(f"{path} lacks the column {key!r}; found {list(frame.columns)}")
    out = frame[[key, *[c for c in optional if c in frame.columns]]].copy()
    out[key] = out[key].astype(str).str.strip()
    duplicated = out[key].duplicated(keep=False)
    if duplicated.any():
        raise DataContractError(f"{path}: {key} repeats on {table.lines(duplicated)}; expected one row per id")
    unknown = sorted(ids - set(out[key]))
    if unknown:
        raise DataContractError(f"{path} lacks {len(unknown)} {key}(s) the sales use, e.g. {unknown[:5]}")
    return out.sort_values(key, ignore_index=True)
