"""Blue-green deployment: the served Bento behind nginx, switched to another without a failed request.

`demandops deploy` serves the Bento of the version the `production` alias names on a free loopback
port next to the one running, waits for its /readyz, points nginx's upstream at it and reloads
nginx (its old workers finish the requests they hold; new connections reach the new Bento), waits
for those old workers to exit, then stops the old Bento (SIGTERM: BentoML answers what it holds,
then exits). Consumers call nginx, on `deploy.host:deploy.port`. A Bento that does not get ready
is stopped and nothing else changes.

The deployment's state is a folder, state/deploy: nginx's configuration, pid and logs, each Bento's
log, and `slots.json` (which Bento serves: its colour, port, process, tag and model version).
nginx keeps request bodies in memory (up to the service's own body limit) and streams answers, so
it writes no temporary files: its workers need no write access to the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from demandops.errors import DemandopsError
from demandops.settings import Settings
from serving.server import bento_env, free_port, serve_command

POLL_S = 0.2


class DeployError(DemandopsError):
    """A deployment step failed; what was serving before still serves."""


@dataclass(frozen=True)
class Slot:
    colour: str  # blue or green: the two Bentos of a switch
    port: int
    pid: int
    bento_tag: str
    model_version: str


@dataclass(frozen=True)
class Switched:
    slot: Slot  # what serves now
    replaced: Slot | None
    ready_s: float  # after the switch began, the new Bento answered /readyz
    answering_s: float  # nginx sent new requests to it
    done_s: float  # the old Bento had finished its requests and stopped


class Deployment:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.state / "deploy"
        self.url = f"http://{settings.deploy.host}:{settings.deploy.port}"

    def active(self) -> Slot | None:
        """The Bento nginx sends requests to, if a deployment runs."""
        path = self.root / "slots.json"
        if not path.is_file():
            return None
        slot = Slot(**json.loads(path.read_text()))
        return slot if psutil.pid_exists(slot.pid) and self._nginx_pid() is not None else None

    def switch(self, bento_tag: str, model_version: str) -> Switched:
        """Serve `bento_tag` in place of the active Bento (or first, starting nginx)."""
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        old = self.active()
        new = self._start_bento(bento_tag, model_version, "green" if old and old.colour == "blue" else "blue")
        ready_s = time.monotonic() - started
        try:
            nginx_workers = self._point_nginx_at(new.port)
        except BaseException:  # nginx still sends to the old Bento: the new one goes, and the error on
            _stop(new.pid, timeout_s=10)
            raise
        (self.root / "slots.json").write_text(json.dumps(asdict(new)))
        answering_s = time.monotonic() - started
        if old is not None:
            self._wait_until_gone(nginx_workers, "nginx's old workers finishing their requests")
            _stop(old.pid, timeout_s=self.settings.deploy.drain_timeout_s)
        return Switched(new, old, ready_s, answering_s, time.monotonic() - started)

    def stop(self) -> None:
        """Stop nginx and the Bento it serves."""
        slot, nginx = self.active(), self._nginx_pid()
        if nginx is not None:
            os.kill(nginx, signal.SIGQUIT)  # graceful: requests held are answered
            self._wait_until_gone([psutil.Process(nginx)], "nginx stopping")
        if slot is not None:
            _stop(slot.pid, timeout_s=self.settings.deploy.drain_timeout_s)
        (self.root / "slots.json").unlink(missing_ok=True)

    def _start_bento(self, bento_tag: str, model_version: str, colour: str) -> Slot:
        port = free_port()
        log = (self.root / f"bento-{colour}.log").open("w")
        command = serve_command(bento_tag, host="127.0.0.1", port=port)
        # A session of its own: the Bento outlives this command, and a signal to its group stops its workers.
        process = subprocess.Popen(
            command, env=bento_env(self.settings), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + self.settings.deploy.ready_timeout_s
        while not _ready(f"http://127.0.0.1:{port}"):
            if process.poll() is not None or time.monotonic() > deadline:
                _stop(process.pid, timeout_s=10)
                raise DeployError(
                    f"the Bento {bento_tag} did not get ready on port {port}; nothing was switched. Its log: "
                    f"{self.root / f'bento-{colour}.log'}"
                )
            time.sleep(POLL_S)
        return Slot(colour, port, process.pid, bento_tag, model_version)

    def _point_nginx_at(self, port: int) -> list[psutil.Process]:
        """Write nginx's configuration for upstream `port` and (re)load it; returns the workers that were
        serving before (they finish their requests and exit)."""
        config = self.root / "nginx.conf"
        config.write_text(nginx_config(self.settings, self.root, port))
        nginx = [self.settings.deploy.nginx, "-p", str(self.root), "-c", str(config)]
        _run([*nginx, "-t"], "nginx refused the configuration")
        master = self._nginx_pid()
        if master is None:
            _run(nginx, "nginx did not start")
            deadline = time.monotonic() + 30
            while not _ready(self.url):
                if time.monotonic() > deadline:
                    raise DeployError(f"nginx does not answer on {self.url}; see {self.root / 'nginx-error.log'}")
                time.sleep(POLL_S)
            return []
        workers = psutil.Process(master).children()
        _run([*nginx, "-s", "reload"], "nginx did not reload")
        return workers

    def _nginx_pid(self) -> int | None:
        path = self.root / "nginx.pid"
        if not path.is_file():
            return None
        written = path.read_text().split()  # `nginx -t` leaves it empty
        pid = int(written[0]) if written else None
        return pid if pid is not None and psutil.pid_exists(pid) else None

    def _wait_until_gone(self, processes: list[psutil.Process], what: str) -> None:
        _, alive = psutil.wait_procs(processes, timeout=self.settings.deploy.drain_timeout_s)
        if alive:
            raise DeployError(f"{what} took longer than {self.settings.deploy.drain_timeout_s:g} s")


def nginx_config(settings: Settings, root: Path, port: int) -> str:
    body_limit = settings.serving.max_body_bytes
    return f"""# written by `demandops deploy` (serving/deploy.py); rewritten at every switch
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # No keep-alive towards clients: a reload closes the old workers' idle connections at once, and a
    # client sending its next request on one at that moment fails (10 of 34,164 under 64 clients).
    keepalive_timeout {settings.deploy.client_keepalive_s};
    client_max_body_size {body_limit + 1};
    client_body_buffer_size {body_limit + 1};
    upstream demandops {{
        server 127.0.0.1:{port};
        keepalive 128;
    }}
    server {{
        listen {settings.deploy.host}:{settings.deploy.port};
        location / {{
            proxy_pass http://demandops;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_buffering off;
            proxy_read_timeout {int(settings.serving.request_deadline_s) + 30}s;
        }}
    }}
}}
"""


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _run(command: list[str], failure: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise DeployError(f"{command[0]} is not installed: install Debian's package nginx, or set "
                          "DEMANDOPS_DEPLOY__NGINX to its path") from exc  # fmt: skip
    if done.returncode != 0:
        raise DeployError(f"{failure}: {done.stderr.strip()[-1000:]}")


def _stop(pid: int, *, timeout_s: float) -> None:
    """SIGTERM to a Bento's process group (its workers too), then SIGKILL after `timeout_s`."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(POLL_S)
    if psutil.pid_exists(pid):
        os.killpg(pid, signal.SIGKILL)


def _reap(pid: int) -> None:
    """Collect the exit status of a Bento started by this process (else it lingers as a zombie)."""
    # A Bento started by an earlier `demandops deploy` is not this process's child: init reaps it.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
