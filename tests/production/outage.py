"""Closed-loop load on a served Bento that records every answer, and readiness polled beside it, so
that an outage test can judge each answer against the answers of a complete online store."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from demandops.settings import Settings
from tests.conftest import RedisServer, wait_until

Pair = tuple[str, str]
TOLERANCE = 1e-5  # float32 rounding between batches of other sizes; wrong features move forecasts by percent


@dataclass(frozen=True)
class Answer:
    sent_at: float  # time.monotonic()
    seconds: float
    status: int
    items: list[dict]


@dataclass
class Recorder:
    """`clients` threads, each sending a request of 1-3 random series and waiting for its answer, until stopped."""

    url: str
    pairs: list[Pair]
    clients: int = 16
    headers: dict[str, str] = field(default_factory=dict)  # of every forecast request, e.g. an API key
    answers: list[Answer] = field(default_factory=list)
    readiness: list[tuple[float, float, int]] = field(default_factory=list)  # (asked at, answered at, status)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.clients)]
        self._threads.append(threading.Thread(target=self._poll_readiness, daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=30, headers=self.headers) as client:
            while not self._stop.is_set():
                asked = rng.sample(self.pairs, rng.randint(1, 3))
                items = [{"store_id": s, "sku_id": k, "horizon": 3} for s, k in asked]
                sent = time.monotonic()
                try:
                    reply = client.post("/v1/forecast", json={"items": items})
                    status, body = reply.status_code, reply.json() if reply.status_code == 200 else []
                except httpx.TransportError:
                    status, body = 0, []
                self.answers.append(Answer(sent, time.monotonic() - sent, status, body))

    def _poll_readiness(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                asked = time.monotonic()
                status = client.get("/readyz").status_code
                self.readiness.append((asked, time.monotonic(), status))
                self._stop.wait(0.2)

    def since(self, moment: float) -> list[Answer]:
        return [a for a in self.answers if a.sent_at >= moment]


def differing(items: list[dict], reference: dict[Pair, dict]) -> list[str]:
    """The items whose origin or quantiles differ from the reference answer of their series."""
    wrong = []
    for item in items:
        expected = reference[(item["store_id"], item["sku_id"])]
        same = item["origin_date"] == expected["origin_date"] and all(
            abs(got[q] - want[q]) <= TOLERANCE * max(1.0, abs(want[q]))
            for got, want in zip(item["forecast"], expected["forecast"], strict=False)
            for q in ("p10", "p50", "p90")
        )
        if not same:
            wrong.append(f"{item['store_id']}/{item['sku_id']} (degraded={item['degraded']})")
    return wrong


def kill_restart_empty_and_refill(
    settings: Settings, redis: RedisServer, load: Recorder, *, outage_s: float
) -> dict[str, float]:
    """The outage, step by step; returns when each step happened (time.monotonic())."""
    wait_until(lambda: len(load.answers) > 50, "the load is under way", timeout_s=30)
    timeline = {"killed": time.monotonic()}
    redis.kill()
    time.sleep(outage_s)  # the outage lasts this long: its answers are judged below
    redis.start()  # empty, as a Redis without persistence comes back
    timeline["restarted"] = time.monotonic()
    wait_until(lambda: load.readiness[-1][0] > timeline["restarted"] + 2, "readiness asked after the restart")
    timeline["refill"] = time.monotonic()
    demandops = str(Path(sys.executable).with_name("demandops"))
    done = subprocess.run(
        [demandops, "features", "refill"], env=settings.child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "refilled it" in done.stdout, done.stdout + done.stderr[-3000:]
    timeline["refilled"] = time.monotonic()
    wait_until(
        lambda: any(not i["degraded"] for a in load.since(timeline["refill"]) for i in a.items),
        "a fresh answer after the refill",
        timeout_s=30,
    )
    timeline["fresh"] = min(
        a.sent_at for a in load.since(timeline["refill"]) if any(not i["degraded"] for i in a.items)
    )
    wait_until(lambda: load.readiness[-1][2] == 200, "ready again", timeout_s=30)
    time.sleep(2)  # and answering fresh for a while: judged below
    return timeline


def summarize(load: Recorder, reference: dict[Pair, dict], timeline: dict[str, float]) -> dict:
    """What the clients saw, judged against the complete store's answers (reference)."""
    answers = load.answers
    items = [item for a in answers for item in a.items]
    outage = [i for a in load.since(timeline["killed"]) if a.sent_at < timeline["fresh"] for i in a.items]
    seconds = sorted(a.seconds for a in answers)
    return {
        "requests": len(answers),
        "statuses": {str(code): sum(a.status == code for a in answers) for code in sorted({a.status for a in answers})},
        "p99_s": round(seconds[int(0.99 * (len(seconds) - 1))], 3),
        "slowest_s": round(seconds[-1], 3),
        "items": len(items),
        "degraded_items": sum(i["degraded"] for i in items),
        "differing": differing(items, reference),
        "outage_items": len(outage),
        "outage_items_fresh": sum(not i["degraded"] for i in outage),
        # Series turn fresh one by one while the refill writes; after it, every answer is fresh.
        "degraded_after_refill": sum(i["degraded"] for a in load.since(timeline["refilled"] + 1) for i in a.items),
        "fresh_after_restart_s": round(timeline["fresh"] - timeline["restarted"], 1),
        "refill_s": round(timeline["refilled"] - timeline["refill"], 1),
    }
