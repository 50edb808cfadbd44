"""Run a built Bento as a local HTTP server, and smoke-test it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from demandops.errors import DemandopsError
from demandops.settings import Settings
from serving.routes import FORECAST

READY_TIMEOUT_S = 180.0
POLL_INTERVAL_S = 0.25


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bento_env(settings: Settings) -> dict[str, str]:
    """The environment a Bento is served in: the settings', with Python's -O.

    Feast decorates its classes with typeguard's @typechecked, which parses each decorated method's
    module source again at import unless assertions are off: with -O, importing Feast took 3.8 s
    instead of 7.6, and a Bento got ready in 8.5 s instead of 11.9 (bench/bento_start.py). demandops'
    own modules hold no asserts. `make install` compiles the -O bytecode once, so that a Bento does not
    compile it on every start where bytecode is not written (PYTHONDONTWRITEBYTECODE).
    """
    return {**settings.child_env(), "PYTHONOPTIMIZE": "1"}


def serve_command(bento_tag: str, *, host: str, port: int) -> list[str]:
    bentoml_cli = Path(sys.executable).with_name("bentoml")
    return [str(bentoml_cli), "serve", bento_tag, "--host", host, "--port", str(port)]


@contextmanager
def running_bento(
    settings: Settings, bento_tag: str, *, log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Serve bento_tag on a free loopback port until the block ends; yields the base URL.

    extra_env overrides the child's environment, e.g. DEMANDOPS_SERVING__* limits.
    """
    port = free_port()
    command = serve_command(bento_tag, host="127.0.0.1", port=port)
    with running_server(command, {**bento_env(settings), **(extra_env or {})}, port, log_path=log_path) as url:
        yield url


@contextmanager
def running_server(command: list[str], env: dict[str, str], port: int, *, log_path: Path) -> Iterator[str]:
    """Run an HTTP server command until the block ends, once its /readyz answers 200."""
    base_url = f"http://127.0.0.1:{port}"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_ready(base_url, process, log_path)
        yield base_url
    finally:
        if process.poll() is None:  # not already gone (a crash benchmark kills it itself)
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_ready(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemandopsError(f"bento server exited with {process.returncode}; log:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet; the deadline bounds the wait
        time.sleep(POLL_INTERVAL_S)
    raise DemandopsError(f"bento server not ready after {READY_TIMEOUT_S}s; log:\n{log_path.read_text()[-3000:]}")


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    detail: str
    response: list[dict]


def smoke_test(base_url: str, *, store_id: str, sku_id: str, horizon: int, model_version: str) -> SmokeResult:
    """One real forecast request: right shape, right version, ordered quantiles."""
    reply = httpx.post(
        f"{base_url}{FORECAST}",
        timeout=60,
        json={"items": [{"store_id": store_id, "sku_id": sku_id, "horizon": horizon}]},
    )
    if reply.status_code != 200:
        return SmokeResult(False, f"HTTP {reply.status_code}: {reply.text[:500]}", [])
    body = reply.json()
    problems = []
    if len(body) != 1 or len(body[0]["forecast"]) != horizon:
        problems.append(f"expected 1 item with {horizon} days")
    elif body[0]["model_version"] != model_version:
        problems.append(f"served version {body[0]['model_version']}, expected {model_version}")
    elif not all(d["p10"] <= d["p50"] <= d["p90"] for d in body[0]["forecast"]):
        problems.append("quantiles cross")
    detail = "; ".join(problems) or f"{store_id}/{sku_id}: {horizon} days, p10<=p50<=p90, version {model_version}"
    return SmokeResult(not problems, detail, body)
