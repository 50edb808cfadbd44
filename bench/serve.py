"""Serving benchmark: the Production Bento under 64 concurrent clients, against BentoML's own ceiling.

    make run && .venv/bin/python -m bench.serve [--rounds 3] [--seconds 15]

It builds a Bento of the Production model from this checkout's code, then measures, side by side,
in alternating rounds ((c) and (c') swap places every other round), with load from a second
process on loopback (bench/load.py:
closed-loop clients, a fixed duration, a bounded request count), one random series per request:
  (a) a no-op BentoML endpoint taking the same body: the framework's ceiling on this machine;
  (b) /forecast without adaptive batching: one feature read and one forward pass per request;
  (c) /forecast with adaptive batching, as shipped, every answer written to the prediction log;
  (c') the same without the prediction log (DEMANDOPS_SERVING__PREDICTION_LOG=false);
  (d) one bulk request of 1,000 items at a time against (c), in items/s.
Then (c) and (c') are started afresh in the other order, (c') first, and measured again in as many
rounds: the cost of the log is the geometric mean of the two orders' median ratios, since two
identical servers differ by up to 20% with the order they were started in (`--control`, an A/A
run in which (c') logs too, measures that bias alone). Each round also records the CPU the server's
processes spent per request; unlogged over logged CPU per request, the median over both orders'
rounds, is the log's cost free of that bias.
Only (c) logs, into a folder of its own under state/bench (not the lake's log); once its server has
stopped, the items logged are counted against the items it answered (nothing may be lost).
Last, (e): a fresh logged server under the same load is killed with SIGKILL mid-run, and the items it
answered are counted against those its log holds: what a crash loses at the default flush interval.
`--log-only` measures (c) against (c') alone, in both start orders, `--rounds` each (serve_log.json).
Medians over the rounds, and the median of each round's ratios, are printed with the goals and each
server's peak RSS (its processes summed), and
written to bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq

from demandops.settings import get_settings
from lifecycle.cli import open_registry
from lifecycle.states import ALIASES, State
from monitoring.prediction_log import compact_spool
from serving.build import build_in_child
from serving.server import free_port, running_bento, running_server, serve_command
from training.tracking import BUNDLE_ARTIFACT, download_bundle

RESULTS = Path(__file__).parent / "results"
GOALS = {
    "batched_over_unbatched": 3.0,
    "batched_over_noop": 0.60,
    "batched_p99_ms": 250.0,
    "logged_over_unlogged": 0.95,  # the prediction log costs at most 5% of throughput
}
UNLOGGED = {"DEMANDOPS_SERVING__PREDICTION_LOG": "false"}


def request_bodies(stores: list[str], skus: list[str], horizon: int, count: int, *, items: int = 1) -> list[bytes]:
    rng = random.Random(0)
    bodies = []
    for _ in range(count):
        chosen = [
            {"store_id": rng.choice(stores), "sku_id": rng.choice(skus), "horizon": horizon} for _ in range(items)
        ]
        bodies.append(json.dumps({"items": chosen}).encode())
    return bodies


def load(
    url: str, bodies_file: Path, *, clients: int, seconds: float, max_requests: int, keys_file: Path | None = None
) -> dict:
    """bench/load.py in its own process, so the load generator does not share the server's GIL; with
    keys_file, its clients send those API keys."""
    command = [
        sys.executable, "-m", "bench.load", f"{url}/v1/forecast", "--bodies", str(bodies_file),
        "--clients", str(clients), "--seconds", str(seconds), "--max-requests", str(max_requests),
        *(["--keys", str(keys_file)] if keys_file else []),
    ]  # fmt: skip
    server = _server_processes(url)
    before = _cpu_seconds(server)
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # CPU the server's processes spent per request: the cost itself, which throughput shows only
    # through the scheduling of two cores shared with the load generator (rounds spread by 20%).
    spent = _cpu_seconds(server) - before
    result["server_cpu_ms_per_request"] = round(1000 * spent / max(result["requests"], 1), 3)
    return result


def bulk(url: str, body: bytes, *, repeats: int, items: int) -> dict:
    """One client sending 1,000-item requests back to back."""
    latencies, errors = [], 0
    with httpx.Client(timeout=120) as client:
        for _ in range(repeats):
            started = time.perf_counter()
            reply = client.post(f"{url}/v1/forecast", content=body, headers={"content-type": "application/json"})
            latencies.append(time.perf_counter() - started)
            errors += reply.status_code != 200 or len(reply.json()) != items
    seconds = np.array(latencies)
    return {
        "requests": repeats,
        "items_per_s": round(items * repeats / seconds.sum(), 1),
        "p50_ms": round(float(np.percentile(seconds * 1000, 50)), 1),
        "p99_ms": round(float(np.percentile(seconds * 1000, 99)), 1),
        "errors": errors,
    }


def bento_of_this_checkout(settings, scratch: Path) -> str:
    """A Bento of the Production model built from this checkout's code, which is what is measured
    (the Production version's own Bento holds the code of the commit that built it)."""
    champion = open_registry().by_alias(ALIASES[State.PRODUCTION])
    if champion is None:
        sys.exit("no version in Production: run `make run` first")
    download_bundle(settings.mlflow_tracking_uri, champion.run_id, scratch)
    built = build_in_child(
        settings, bundle_dir=scratch / BUNDLE_ARTIFACT, model_version=champion.version, lifecycle_state=champion.state
    )
    return built.bento_tag


def _round_order(names: list[str], round_number: int) -> list[str]:
    """Every other round runs (c') before (c): a variant run right after the unbatched server (which
    saturates both cores) would otherwise always be the logged one."""
    if round_number % 2 == 0:
        return names
    logged, unlogged = names.index("batched"), names.index("unlogged")
    names[logged], names[unlogged] = names[unlogged], names[logged]
    return names


def _server_processes(url: str) -> set[psutil.Process]:
    """The server on url's port: the `bentoml serve` supervisor and its workers."""
    port = url.rsplit(":", 1)[1]
    servers = [p for p in psutil.process_iter(["cmdline"]) if ["--port", port] in _pairs(p.info["cmdline"] or [])]
    return {child for server in servers for child in server.children(recursive=True)} | set(servers)


def _cpu_seconds(processes: set[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def _peak_rss_mb(url: str) -> float:
    """Peak resident memory (VmHWM) of the server on url's port, summed over its processes."""
    return round(sum(_high_water_kib(p.pid) for p in _server_processes(url)) / 1024, 1)


def _pairs(words: list[str]) -> list[list[str]]:
    return [list(pair) for pair in zip(words, words[1:], strict=False)]


def _high_water_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def per_round_ratios(top: list[dict], bottom: list[dict]) -> list[float]:
    return [t["requests_per_s"] / b["requests_per_s"] for t, b in zip(top, bottom, strict=True)]


def cpu_ratios(logged: list[dict], unlogged: list[dict]) -> list[float]:
    """Per round, the unlogged server's CPU per request over the logged one's: the throughput ratio the
    log's cost would give on cores the server had to itself."""
    key = "server_cpu_ms_per_request"
    return [u[key] / t[key] for t, u in zip(logged, unlogged, strict=True)]


def median_of(rounds: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--bulk-repeats", type=int, default=10)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--crash-only", action="store_true", help="Measure (e) alone; update serve.json's crash.")
    parser.add_argument(
        "--log-only",
        action="store_true",
        help="Only (c) against (c'), in both start orders, --rounds each; recorded in serve_log.json.",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="A/A: (c') logs too, into a folder of its own, so logged/unlogged is the bench's own bias between "
        "two identical servers; recorded in serve_control.json, serve.json untouched.",
    )
    args = parser.parse_args()
    if args.crash_only:
        crash_only(args.clients)
        return

    settings = get_settings()
    logs = settings.state / "bench"
    prediction_log = logs / "prediction_log"
    tag = bento_of_this_checkout(settings, logs / "bundle")
    if args.log_only:
        log_cost_only(settings, tag, logs, single_item_bodies(settings, logs), args)
        return
    with ExitStack() as servers:
        noop_port = free_port()
        noop_command = [
            str(Path(sys.executable).with_name("bentoml")),
            "serve",
            "bench.noop_service:NoopForecastService",
        ]
        urls = {
            "noop": servers.enter_context(
                running_server(
                    [*noop_command, "--host", "127.0.0.1", "--port", str(noop_port)],
                    settings.child_env(),
                    noop_port,
                    log_path=logs / "noop.log",
                )
            ),
            "unbatched": servers.enter_context(
                running_bento(
                    settings,
                    tag,
                    log_path=logs / "unbatched.log",
                    extra_env={"DEMANDOPS_SERVING__ADAPTIVE_BATCHING": "false", **UNLOGGED},
                )
            ),
            "batched": servers.enter_context(
                running_bento(
                    settings,
                    tag,
                    log_path=logs / "batched.log",
                    extra_env={"DEMANDOPS_MONITORING__PREDICTION_LOG_DIR": str(_fresh(prediction_log))},
                )
            ),
            "unlogged": servers.enter_context(
                running_bento(
                    settings,
                    tag,
                    log_path=logs / "unlogged.log",
                    extra_env={"DEMANDOPS_MONITORING__PREDICTION_LOG_DIR": str(_fresh(logs / "control_log"))}
                    if args.control
                    else UNLOGGED,
                )
            ),
        }
        metadata = httpx.post(f"{urls['batched']}/v1/metadata", json={}).json()
        stores, skus = _series(settings)
        bodies_file = logs / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(request_bodies(stores, skus, metadata["horizon"], 5000)))
        answered = 0  # items (c) answered with 200, each of which must be in its log
        for name, url in urls.items():  # not recorded: BentoML's batcher first calibrates on single requests
            warm = load(
                url, bodies_file, clients=args.clients, seconds=args.warmup_seconds, max_requests=args.max_requests
            )
            answered += _answered(warm) if name == "batched" else 0
        rounds: dict[str, list[dict]] = {name: [] for name in urls}
        for round_number in range(args.rounds):
            for name in _round_order(list(urls), round_number):
                url = urls[name]
                result = load(
                    url, bodies_file, clients=args.clients, seconds=args.seconds, max_requests=args.max_requests
                )
                rounds[name].append(result)
                answered += _answered(result) if name == "batched" else 0
                print(f"round {round_number + 1} {name:9s} {json.dumps(result)}", flush=True)
        [bulk_body] = request_bodies(stores, skus, metadata["horizon"], 1, items=1000)
        bulk_result = bulk(urls["batched"], bulk_body, repeats=args.bulk_repeats, items=1000)
        answered += 1000 * (bulk_result["requests"] - bulk_result["errors"])
        print(f"bulk (d)  {json.dumps(bulk_result)}")
        refused_as_overloaded = sum(r["errors"].get("503", 0) for rs in rounds.values() for r in rs)
        peak_rss_mb = {name: _peak_rss_mb(url) for name, url in urls.items()}  # the servers still run
        print(f"peak RSS (MiB, each server's processes summed): {json.dumps(peak_rss_mb)}")

    swapped: dict[str, list] = {}
    if not args.control:
        swapped, warm_answered = swapped_pair(settings, tag, logs, prediction_log, bodies_file, args)
        answered += warm_answered + sum(_answered(r) for r in swapped["batched"])
    summary = {
        name: {k: median_of(rs, k) for k in ("requests_per_s", "p50_ms", "p99_ms")} for name, rs in rounds.items()
    }
    # Ratios are taken within each round (variants measured minutes apart), then the median.
    paired = {
        "batched_over_unbatched": per_round_ratios(rounds["batched"], rounds["unbatched"]),
        "batched_over_noop": per_round_ratios(rounds["batched"], rounds["noop"]),
        "logged_over_unlogged": per_round_ratios(rounds["batched"], rounds["unlogged"]),
    }
    logged = _logged_items(prediction_log)  # the servers have stopped: their queues are written
    ratios = {name: round(statistics.median(values), 2) for name, values in paired.items()}
    if swapped:  # each order's median ratio, and their geometric mean: the order's bias cancels
        paired["logged_over_unlogged_swapped"] = per_round_ratios(swapped["batched"], swapped["unlogged"])
        started_first = statistics.median(paired["logged_over_unlogged"])
        started_second = statistics.median(paired["logged_over_unlogged_swapped"])
        ratios["logged_over_unlogged_started_first"] = round(started_first, 3)
        ratios["logged_over_unlogged_started_second"] = round(started_second, 3)
        ratios["logged_over_unlogged"] = round((started_first * started_second) ** 0.5, 3)
    by_cpu = cpu_ratios(rounds["batched"], rounds["unlogged"])
    by_cpu += cpu_ratios(swapped["batched"], swapped["unlogged"]) if swapped else []
    paired["logged_over_unlogged_by_cpu"] = by_cpu
    ratios["logged_over_unlogged_by_cpu"] = round(statistics.median(by_cpu), 3)
    ratios["batched_p99_ms"] = summary["batched"]["p99_ms"]
    errors = sum(sum(r["errors"].values()) for rs in rounds.values() for r in rs) + bulk_result["errors"]
    met = {
        "batched_over_unbatched": ratios["batched_over_unbatched"] >= GOALS["batched_over_unbatched"],
        "batched_over_noop": ratios["batched_over_noop"] >= GOALS["batched_over_noop"],
        "batched_p99_ms": ratios["batched_p99_ms"] <= GOALS["batched_p99_ms"],
        "logged_over_unlogged": ratios["logged_over_unlogged"] >= GOALS["logged_over_unlogged"],
        "nothing_lost": logged == answered,
        "no_errors": errors == 0,
    }
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "config": {**vars(args), "model_version": metadata["model_version"], "limits": metadata["limits"]},
        "median": summary,
        "bulk_1000_items": bulk_result,
        "ratios": ratios,
        "goals": GOALS,
        "met": met,
        "errors": errors,
        "refused_as_overloaded": refused_as_overloaded,
        "peak_rss_mb": peak_rss_mb,
        "prediction_log": {"items_answered": answered, "items_logged": logged},
        "per_round_ratios": paired,
        "rounds": rounds,
        "swapped_rounds": swapped,
    }
    print(json.dumps({"median": summary, "ratios": ratios, "met": met, "errors": errors}, indent=2))
    print(f"prediction log: {logged} items logged of {answered} answered")
    if args.control:
        control = {"ratios": ratios, "per_round_ratios": paired, "rounds": rounds}
        (RESULTS / "serve_control.json").write_text(json.dumps(control, indent=2) + "\n")
        return
    crash = crash_loss(settings, tag, bodies_file, logs, clients=args.clients)
    print(f"crash (e): {json.dumps(crash)}")
    result["crash"] = crash
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps(result, indent=2) + "\n")


def swapped_pair(
    settings, tag: str, logs: Path, prediction_log: Path, bodies_file: Path, args, *, unlogged_first: bool = True
) -> tuple[dict, int]:
    """(c) and (c') again, fresh, the unlogged one started first this time, in as many rounds; with
    the items the logged one answered while warming up. Two identical servers differed by 10-20% in
    the order they were started (an A/A run with both logging, --control, measured 0.82), so the
    cost of the log is taken over both orders."""
    starts = {
        "unlogged": lambda: running_bento(settings, tag, log_path=logs / "unlogged-2.log", extra_env=UNLOGGED),
        "batched": lambda: running_bento(
            settings,
            tag,
            log_path=logs / "batched-2.log",
            extra_env={"DEMANDOPS_MONITORING__PREDICTION_LOG_DIR": str(prediction_log)},
        ),
    }
    order = ["unlogged", "batched"] if unlogged_first else ["batched", "unlogged"]
    with ExitStack() as pair:
        urls = {name: pair.enter_context(starts[name]()) for name in order}
        limits = {"clients": args.clients, "max_requests": args.max_requests}
        warm = {name: load(url, bodies_file, seconds=args.warmup_seconds, **limits) for name, url in urls.items()}
        rounds: dict[str, list] = {name: [] for name in urls}
        for round_number in range(args.rounds):
            for name in _round_order(["batched", "unlogged"], round_number + 1):
                result = load(urls[name], bodies_file, seconds=args.seconds, **limits)
                rounds[name].append(result)
                print(f"swapped {round_number + 1} {name:9s} {json.dumps(result)}", flush=True)
    return rounds, _answered(warm["batched"])


def log_cost_only(settings, tag: str, logs: Path, bodies_file: Path, args) -> dict:
    """--log-only: (c) and (c') alone, started in one order and then afresh in the other, `--rounds`
    alternating rounds each; no other server shares the cores, so the pair's rounds are all there is."""
    prediction_log = _fresh(logs / "prediction_log")
    orders = {}
    for label, unlogged_first in (("logged_started_first", False), ("unlogged_started_first", True)):
        rounds, _ = swapped_pair(settings, tag, logs, prediction_log, bodies_file, args, unlogged_first=unlogged_first)
        orders[label] = {
            "throughput_ratios": per_round_ratios(rounds["batched"], rounds["unlogged"]),
            "cpu_ratios": cpu_ratios(rounds["batched"], rounds["unlogged"]),
            "rounds": rounds,
        }
    medians = [statistics.median(o["throughput_ratios"]) for o in orders.values()]
    result = {
        "config": vars(args),
        "logged_over_unlogged": round((medians[0] * medians[1]) ** 0.5, 3),
        "by_order": {label: round(m, 3) for label, m in zip(orders, medians, strict=True)},
        "logged_over_unlogged_by_cpu": round(
            statistics.median([r for o in orders.values() for r in o["cpu_ratios"]]), 3
        ),
        "orders": orders,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "orders"}, indent=2))
    (RESULTS / "serve_log.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def crash_loss(settings, tag: str, bodies_file: Path, logs: Path, *, clients: int, seconds: float = 8.0) -> dict:
    """Items answered, and items logged, by a server killed with SIGKILL halfway through a load run."""
    folder = _fresh(logs / "crash_log")
    port = free_port()
    env = {**settings.child_env(), "DEMANDOPS_MONITORING__PREDICTION_LOG_DIR": str(folder)}
    with running_server(serve_command(tag, host="127.0.0.1", port=port), env, port, log_path=logs / "crash.log") as url:
        command = [
            sys.executable, "-m", "bench.load", f"{url}/v1/forecast", "--bodies", str(bodies_file),
            "--clients", str(clients), "--seconds", str(seconds), "--max-requests", "1000000",
        ]  # fmt: skip
        loader = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(seconds / 2)
        server = next(
            p for p in psutil.process_iter(["cmdline"]) if f"--port {port}" in " ".join(p.info["cmdline"] or [])
        )
        # The server and its workers, as a lost machine: BentoML's workers run in sessions of their own, so
        # killing the server's process group alone left them serving (and logging) on.
        doomed = [server, *server.children(recursive=True)]
        for process in doomed:
            process.send_signal(signal.SIGKILL)
        psutil.wait_procs(doomed, timeout=30)
        out, _ = loader.communicate(timeout=120)
    result = json.loads(out.strip().splitlines()[-1])
    answered, logged = _answered(result), _logged_items(folder)
    interval = settings.serving.log_flush_interval_s
    return {"answered": answered, "logged": logged, "lost": answered - logged, "flush_interval_s": interval}


def crash_only(clients: int) -> None:
    """(e) alone, on a Bento of this checkout, recorded into the existing serve.json."""
    settings = get_settings()
    logs = settings.state / "bench"
    tag = bento_of_this_checkout(settings, logs / "bundle")
    crash = crash_loss(settings, tag, single_item_bodies(settings, logs), logs, clients=clients)
    print(f"crash (e): {json.dumps(crash)}")
    recorded = json.loads((RESULTS / "serve.json").read_text())
    recorded["crash"] = {**crash, "measured": "alone, by --crash-only"}
    (RESULTS / "serve.json").write_text(json.dumps(recorded, indent=2) + "\n")


def single_item_bodies(settings, logs: Path) -> Path:
    """5,000 one-item request bodies at the profile's horizon, one per line, for bench/load.py."""
    stores, skus = _series(settings)
    bodies_file = logs / "bodies.jsonl"
    horizon = settings.cadence(settings.frequency or "D").horizon
    bodies_file.write_bytes(b"\n".join(request_bodies(stores, skus, horizon, 5000)))
    return bodies_file


def _answered(result: dict) -> int:
    """Items answered with 200 (one per request in the load rounds)."""
    return result["requests"] - sum(result["errors"].values())


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def _logged_items(folder: Path) -> int:
    compact_spool(folder)  # what the service spooled, as the log's first reader finds it
    return sum(pq.read_metadata(path).num_rows for path in folder.glob("origin=*/*.parquet"))


def _series(settings) -> tuple[list[str], list[str]]:
    stores = pd.read_parquet(settings.data / "stores.parquet")["store_id"].tolist()
    skus = pd.read_parquet(settings.data / "skus.parquet")["sku_id"].tolist()
    return stores, skus


if __name__ == "__main__":
    main()
