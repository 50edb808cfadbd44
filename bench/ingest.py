"""Ingestion throughput: simulator generation, plain partition reads, and reads through the gate.

Generates a preset into a temporary folder, then alternates a plain read of every partition with
the full gate (read + Great Expectations checkpoints + daily-profile bounds) on the same files,
and prints rows per second and the gate/read cost ratio. Writes bench/results/ingest.json.

    .venv/bin/python -m bench.ingest [--preset large] [--repeats 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

from demandops.contract import partition_dates, read_sales_partition
from demandops.settings import GateSettings
from salesdata.datasets import generate
from salesdata.gate import GateLedger, gate_periods
from salesdata.simulator import PRESETS, simulate

RESULT = Path(__file__).parent / "results" / "ingest.json"


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="large", choices=sorted(PRESETS))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        start = time.perf_counter()
        rows = len(simulate(PRESETS[args.preset]).sales)
        simulate_s = time.perf_counter() - start
        gc.collect()
        start = time.perf_counter()
        generate(data_dir, args.preset)  # simulates again and writes every partition
        generate_s = time.perf_counter() - start
        print(
            f"{args.preset}: {rows:,} rows; simulate {rows / simulate_s:,.0f} rows/s, "
            f"simulate+write {rows / generate_s:,.0f} rows/s; peak RSS so far {peak_rss_gb():.1f} GB"
        )
        gc.collect()
        days = partition_dates(data_dir)
        times: dict[str, list[float]] = {"read": [], "gate": []}
        for repeat in range(args.repeats):
            start = time.perf_counter()
            read_rows = sum(len(read_sales_partition(data_dir, d)) for d in days)
            times["read"].append(time.perf_counter() - start)
            start = time.perf_counter()
            result = gate_periods(data_dir, days, GateLedger(Path(tmp) / f"ledger{repeat}"), GateSettings())
            times["gate"].append(time.perf_counter() - start)
            assert read_rows == rows and not result.quarantined, result.quarantined[:5]
            del result
            gc.collect()
        median = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"read {rows / median['read']:,.0f} rows/s; read+gate {rows / median['gate']:,.0f} rows/s; "
            f"gate/read cost ratio {median['gate'] / median['read']:.2f}x (median of {args.repeats}); "
            f"peak RSS {peak_rss_gb():.1f} GB"
        )
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, Python {platform.python_version()}",
                "preset": args.preset,
                "rows": rows,
                "partitions": len(days),
                "simulate_rows_per_s": rows / simulate_s,
                "simulate_and_write_rows_per_s": rows / generate_s,
                "runs_s": times,
                "read_rows_per_s": rows / median["read"],
                "read_and_gate_rows_per_s": rows / median["gate"],
                "gate_over_read": median["gate"] / median["read"],
                "peak_rss_gb": peak_rss_gb(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
