"""Malformed sales files through `demandops data import`, as a careless user or a broken export
produces them: how many are refused, whether each refusal names the file (and the line where
there is one) without a traceback, and whether the stored dataset survives every one of them.

    .venv/bin/python -m bench.abuse        # writes bench/results/abuse.json

Each file is imported with --append into a small monthly dataset (and, when that is refused for
being the wrong shape, it is the shape that is judged). A case listed as `accepted` must import.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from salesdata import dvc_versions

HERE = Path(__file__).parent
DEMANDOPS = str(Path(sys.executable).with_name("demandops"))
HEADER = "date,store_id,sku_id,units_sold\n"
ROW = "2025-{month:02d}-01,S1,A,{units}\n"
BASE = HEADER + "".join(ROW.format(month=m, units=10 + m) for m in range(1, 7))


def csv(text: str) -> bytes:
    return text.encode()


def parquet(frame: pd.DataFrame | pa.Table) -> bytes:
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _new_rows(units: str = "5") -> str:
    return HEADER + f"2025-07-01,S1,A,{units}\n2025-08-01,S1,A,6\n"


def _good_parquet_table() -> pa.Table:
    return pa.Table.from_pandas(
        pd.DataFrame({"date": ["2025-07-01"], "store_id": ["S1"], "sku_id": ["A"], "units_sold": [5.0]}),
        preserve_index=False,
    )


# name -> (suffix, bytes, expected outcome: "refused" or "accepted")
CASES: dict[str, tuple[str, bytes, str]] = {
    "latin-1 text": (".csv", (HEADER + "2025-07-01,Café,A,1\n").encode("latin-1"), "refused"),
    "utf-16 text": (".csv", _new_rows().encode("utf-16"), "refused"),
    "byte-order mark": (".csv", ("\ufeff" + _new_rows()).encode(), "accepted"),
    "CRLF line ends": (".csv", _new_rows().replace("\n", "\r\n").encode(), "accepted"),
    "semicolons": (".csv", csv(_new_rows().replace(",", ";")), "refused"),
    "tabs": (".csv", csv(_new_rows().replace(",", "\t")), "refused"),
    "pipes": (".csv", csv(_new_rows().replace(",", "|")), "refused"),
    "repeated column": (".csv", csv("date,store_id,sku_id,units_sold,units_sold\n2025-07-01,S1,A,1,2\n"), "refused"),
    "missing column": (".csv", csv("date,store_id,units_sold\n2025-07-01,S1,1\n"), "refused"),
    "renamed column": (".csv", csv("date,store_id,sku_id,units\n2025-07-01,S1,A,1\n"), "refused"),
    "infinite units": (".csv", csv(_new_rows("inf")), "refused"),
    "minus infinity": (".csv", csv(_new_rows("-inf")), "refused"),
    "NaN text": (".csv", csv(_new_rows("NaN")), "refused"),
    "1e300 units": (".csv", csv(_new_rows("1e300")), "refused"),
    "a spike 10,000 times the series": (".csv", csv(_new_rows("150000")), "refused"),
    "a real spike 20 times": (".csv", csv(_new_rows("300")), "accepted"),
    "negative units": (".csv", csv(_new_rows("-3")), "refused"),
    "decimal comma": (".csv", csv(HEADER + '2025-07-01,S1,A,"12,5"\n'), "refused"),
    "empty units": (".csv", csv(_new_rows("")), "refused"),
    "future date": (".csv", csv(HEADER + "2099-01-01,S1,A,1\n"), "refused"),
    "year 1900": (".csv", csv(HEADER + "1900-07-01,S1,A,1\n"), "refused"),
    "a time of day": (".csv", csv(HEADER + "2025-07-01 13:00:00,S1,A,1\n"), "refused"),
    "day-first dates": (".csv", csv(HEADER + "01/07/2025,S1,A,1\n"), "refused"),
    "id with a space": (".csv", csv(HEADER + "2025-07-01,S 1,A,1\n"), "refused"),
    "id of 65 characters": (".csv", csv(HEADER + f"2025-07-01,{'S' * 65},A,1\n"), "refused"),
    "duplicated rows": (".csv", csv(HEADER + "2025-07-01,S1,A,1\n2025-07-01,S1,A,1\n"), "refused"),
    "repeated header": (".csv", csv(_new_rows() + HEADER + "2025-09-01,S1,A,1\n"), "refused"),
    "unterminated quote": (".csv", csv(HEADER + '2025-07-01,"S1,A,1\n'), "refused"),
    "header only": (".csv", csv(HEADER), "refused"),
    "empty file": (".csv", b"", "refused"),
    "binary garbage": (".csv", bytes(range(256)) * 8, "refused"),
    "period already stored": (".csv", csv(HEADER + "2025-03-01,S1,A,1\n"), "refused"),
    "truncated parquet": (".parquet", parquet(_good_parquet_table())[:60], "refused"),
    "parquet with text units": (
        ".parquet",
        parquet(pd.DataFrame({"date": ["2025-07-01"], "store_id": ["S1"], "sku_id": ["A"], "units_sold": ["x"]})),
        "refused",
    ),
    "parquet with a repeated column": (
        ".parquet",
        parquet(_good_parquet_table().append_column("units_sold", pa.array([7.0]))),
        "refused",
    ),
    "spreadsheet file": (".xlsx", b"PK\x03\x04 not really a workbook", "refused"),
}


def run_case(project: Path, env: dict, name: str, suffix: str, content: bytes) -> dict:
    source = project / f"case{suffix}"
    source.write_bytes(content)
    before = dvc_versions.dataset_version(project, project / "data")
    command = [DEMANDOPS, "data", "import", str(source), "--frequency", "M", "--append"]
    done = subprocess.run(command, env=env, cwd=project, capture_output=True, text=True, timeout=300)
    after = dvc_versions.dataset_version(project, project / "data")
    message = (done.stderr or done.stdout).strip()
    return {
        "case": name,
        "exit": done.returncode,
        "traceback": "Traceback" in done.stderr or "Traceback" in done.stdout,
        "names_the_file": source.name in message,
        "dataset_changed": before != after,
        "message": message.splitlines()[-1][:300] if message else "",
    }


def main() -> None:
    results, started = [], time.monotonic()
    for name, (suffix, content, expected) in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            project = Path(tmp)
            env = {k: v for k, v in os.environ.items() if not k.startswith("DEMANDOPS_")}
            env["DEMANDOPS_PROJECT_DIR"] = str(project)
            (project / "base.csv").write_text(BASE)
            base = [DEMANDOPS, "data", "import", "base.csv", "--frequency", "M"]
            subprocess.run(base, env=env, cwd=project, check=True, capture_output=True, timeout=300)
            outcome = run_case(project, env, name, suffix, content)
        outcome["expected"] = expected
        outcome["as_expected"] = (outcome["exit"] == 0) == (expected == "accepted")
        results.append(outcome)
        flag = "ok " if outcome["as_expected"] and not outcome["traceback"] else "BAD"
        print(f"{flag} {name:34s} exit {outcome['exit']}  {outcome['message'][:110]}", flush=True)
    refused = [r for r in results if r["expected"] == "refused"]
    summary = {
        "cases": len(results),
        "as_expected": sum(r["as_expected"] for r in results),
        "tracebacks": sum(r["traceback"] for r in results),
        "refusals_naming_the_file": f"{sum(r['names_the_file'] for r in refused if r['exit'])}/{len(refused)}",
        "refusals_that_changed_the_dataset": sum(r["dataset_changed"] for r in refused),
        "seconds": round(time.monotonic() - started, 1),
        "results": results,
    }
    (HERE / "results" / "abuse.json").write_text(json.dumps(summary, indent=2) + "\n")
    print({k: v for k, v in summary.items() if k != "results"})


if __name__ == "__main__":
    main()
