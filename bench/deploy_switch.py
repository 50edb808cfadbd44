"""Blue-green switches under load: failed requests with nginx's client keep-alive off (the default) and on.

    make run && .venv/bin/python -m bench.deploy_switch [--switches 3] [--keepalive 0 75]

For each keep-alive setting: `demandops deploy` serves the Production Bento behind nginx on a free
port, 64 clients (bench/load.py, one series per request) run through nginx while `demandops deploy`
switches `--switches` times to a fresh Bento of the same version, then the load stops and nginx
stops. Records the requests, the failed ones by status (0: a transport failure, such as a closed
connection), the requests per second, each switch's times from the command's start (the new Bento
ready, the new version answering through nginx, the old Bento stopped, the command's end), and the
peak RSS of the Bento serving last (its processes summed). Results in bench/results/deploy_switch.json.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.serve import _peak_rss_mb
from demandops.settings import get_settings
from lifecycle.cli import open_registry
from serving.deploy import Deployment
from serving.server import free_port

RESULTS = Path(__file__).parent / "results"
SAID = re.compile(r"ready after ([\d.]+) s, answering after ([\d.]+) s, the old Bento stopped after ([\d.]+) s")


def demandops(env: dict[str, str], *arguments: str) -> str:
    return subprocess.run([str(Path(sys.executable).with_name("demandops")), *arguments], env=env, check=True,
                          capture_output=True, text=True).stdout  # fmt: skip


def phases(took_s: float, said: str) -> dict:
    """A switch's times from the command's start, from what `demandops deploy` said: the new Bento ready,
    nginx sending to it (the new version answering), the old Bento stopped, and the command's end."""
    ready, answering, done = (float(x) for x in SAID.search(said).groups())
    before = took_s - done  # the command's own start-up: its imports, the registry read
    return {"ready_s": round(before + ready, 1), "answering_s": round(before + answering, 1),
            "old_stopped_s": round(before + done, 1), "command_s": round(took_s, 1)}  # fmt: skip


def switches_under_load(keepalive_s: int, switches: int, bodies: Path, version: str) -> dict:
    port = free_port()
    env = {**get_settings().child_env(), "DEMANDOPS_DEPLOY__PORT": str(port),
           "DEMANDOPS_DEPLOY__CLIENT_KEEPALIVE_S": str(keepalive_s)}  # fmt: skip
    demandops(env, "deploy")
    load = subprocess.Popen(
        [sys.executable, "-m", "bench.load", f"http://127.0.0.1:{port}/v1/forecast", "--bodies", str(bodies),
         "--clients", "64", "--seconds", "600", "--max-requests", "100000000"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    took, peak_rss_mb = [], []
    try:
        time.sleep(5)
        for _ in range(switches):
            started = time.monotonic()
            said = demandops(env, "deploy", "--version", version)
            took.append(phases(time.monotonic() - started, said))
        time.sleep(5)
        peak_rss_mb = _peak_rss_mb(f"http://127.0.0.1:{_bento_port()}")  # the Bento serving last
    finally:
        load.terminate()  # bench/load.py finishes the requests it sent and prints its line
        out, _ = load.communicate(timeout=120)
        demandops(env, "deploy", "--stop")
    result = json.loads(out.strip().splitlines()[-1])
    return {"client_keepalive_s": keepalive_s, "switches": took, "bento_peak_rss_mb": peak_rss_mb, **result}


def _bento_port() -> int:
    """The port of the Bento nginx sends requests to, from the deployment's own record."""
    return Deployment(get_settings()).active().port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=3)
    parser.add_argument("--keepalive", type=int, nargs="+", default=[0, 75])
    args = parser.parse_args()
    bodies = get_settings().state / "bench" / "deploy-bodies.jsonl"
    bodies.parent.mkdir(parents=True, exist_ok=True)
    bodies.write_text(json.dumps({"items": [{"store_id": "S000", "sku_id": "P0001", "horizon": 7}]}) + "\n")
    version = open_registry().by_alias("production").version
    runs = []
    for keepalive_s in args.keepalive:
        runs.append(switches_under_load(keepalive_s, args.switches, bodies, version))
        print(json.dumps(runs[-1]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deploy_switch.json").write_text(json.dumps({"config": vars(args), "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
