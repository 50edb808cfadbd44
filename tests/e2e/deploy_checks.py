"""What the end-to-end test asks of `demandops deploy`: nginx in front of the Bento, and a switch from one
model version's Bento to another's under 64 clients of load without one failed request."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from demandops.settings import Settings
from serving.deploy import Deployment
from serving.routes import METADATA
from serving.server import free_port

CLIENTS = 64
# A bound that says "switches", beside another test on 2 cores; the time itself is measured by
# bench/deploy_switch.py (27.6-28.2 s here from the command's start, the Bento's start-up under load).
NEW_VERSION_WITHIN_S = 90.0


def demandops(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("demandops")), *arguments]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def served_version(url: str) -> str | None:
    try:
        return str(httpx.post(f"{url}{METADATA}", json={}, timeout=10).json()["model_version"])
    except httpx.TransportError:
        return None


def assert_blue_green_switches_under_load(settings: Settings, scratch: Path, production: str, other: str) -> None:
    """Deploy the Production version; under load, switch to `other`, then back to Production; stop."""
    if shutil.which(settings.deploy.nginx) is None:
        pytest.fail("nginx is not installed: `apt-get install nginx` (Debian's package), as the README says")
    port = free_port()
    env = {**settings.child_env(), "DEMANDOPS_DEPLOY__PORT": str(port)}
    deployment = Deployment(settings.model_copy(update={"deploy": settings.deploy.model_copy(update={"port": port})}))
    try:
        _switch_twice_under_load(deployment, env, scratch, production, other)
    finally:
        deployment.stop()  # a check that failed leaves no nginx or Bento running; after --stop, nothing to do


def _switch_twice_under_load(deployment: Deployment, env: dict[str, str], scratch: Path, production: str, other: str):
    first = demandops(env, "deploy")
    assert first.returncode == 0, first.stderr
    assert served_version(deployment.url) == production, first.stdout
    bodies = scratch / "deploy-bodies.jsonl"
    item = {"store_id": "S000", "sku_id": "P0001", "horizon": 7}
    bodies.write_text(json.dumps({"items": [item]}) + "\n")
    load = subprocess.Popen(
        [sys.executable, "-m", "bench.load", f"{deployment.url}/v1/forecast", "--bodies", str(bodies),
         "--clients", str(CLIENTS), "--seconds", "120", "--max-requests", "10000000"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # the load is running before the switch
        for version, arguments in ((other, ["--version", other]), (production, [])):
            replaced, asked = deployment.active(), time.monotonic()
            switched = demandops(env, "deploy", *arguments)
            assert switched.returncode == 0, switched.stderr
            took = time.monotonic() - asked
            assert served_version(deployment.url) == version, switched.stdout
            assert took < NEW_VERSION_WITHIN_S, f"v{version} answered {took:.1f} s after the command started"
            assert not psutil.pid_exists(replaced.pid), "the replaced Bento is stopped"
            print(f"\nswitched to v{version} under {CLIENTS} clients in {took:.1f} s: {switched.stdout.strip()}")
    finally:
        load.terminate()  # bench/load.py stops its clients and prints what they got
        out, _ = load.communicate(timeout=60)
    result = json.loads(out.strip().splitlines()[-1])
    print(f"load through both switches: {result}")
    assert result["requests"] > 100 and result["errors"] == {}, f"requests that failed during the switches: {result}"
    stopped = demandops(env, "deploy", "--stop")
    assert stopped.returncode == 0 and deployment.active() is None, stopped.stderr
    assert served_version(deployment.url) is None, "nginx is stopped"
