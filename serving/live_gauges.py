"""The loop's live accuracy on /metrics: the forecast_accuracy asset's summary, re-read when it changes.

Each served version's rolling live WAPE, bias, p10-p90 coverage, pinball loss and scored forecasts,
and WAPE per horizon step (monitoring/live_summary.py). A thread looks at the file every few
seconds; nothing is done per request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from monitoring.lead_time_evidence import SERVED_DIR
from monitoring.live_summary import read_summary, summary_path
from serving import metrics

log = logging.getLogger(__name__)
GAUGES = {"wape": "LIVE_WAPE", "bias": "LIVE_BIAS", "coverage": "LIVE_COVERAGE", "pinball": "LIVE_PINBALL"}


class LiveGauges:
    def __init__(self, lake_dir: Path, *, interval_s: float = 10.0, recalibrate: Callable[[Path], int] | None = None):
        self.lake_dir = lake_dir
        # Called with the lake after each new summary, which the loop writes after the lead-time
        # tables it computed: the predictor takes its version's (serving/predictor.py), off the request path.
        self.recalibrate = recalibrate
        self.interval_s = interval_s
        self._seen: float | None = None
        self._stop = threading.Event()

    def start(self) -> LiveGauges:
        self.refresh()
        threading.Thread(target=self._run, name="live-gauges", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> bool:
        """Set the gauges from the summary when it changed; whether it did."""
        path = summary_path(self.lake_dir)
        changed = path.stat().st_mtime if path.is_file() else None
        if changed is None or changed == self._seen:
            return False
        summary = read_summary(self.lake_dir)
        self._seen = changed
        for version, live in summary["versions"].items():
            for key, gauge in GAUGES.items():
                if live[key] is not None:
                    getattr(metrics, gauge).labels(model_version=version).set(live[key])
            metrics.LIVE_SCORED.labels(model_version=version).set(live["rows"])
            for step, wape in live["wape_per_step"].items():
                if wape is not None:
                    metrics.LIVE_STEP_WAPE.labels(model_version=version, step=step).set(wape)
        metrics.LIVE_PERIOD.set(_ordinal(summary["period"]))
        if self.recalibrate is not None:
            try:
                metrics.LEAD_TIME_REFITTED.set(self.recalibrate(self.lake_dir))
            except (OSError, ValueError) as exc:  # an unreadable tables file: the tables as they were
                log.warning("lead-time tables not refitted from %s: %s", self.lake_dir.joinpath(*SERVED_DIR), exc)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.refresh()
            except (OSError, ValueError, KeyError) as exc:  # a half-copied or foreign file: keep the last values
                log.warning("live accuracy gauges not refreshed from %s: %s", summary_path(self.lake_dir), exc)


def _ordinal(period: str) -> float:
    """The last scored period as a Unix time (a gauge holds numbers)."""
    return datetime.fromisoformat(period).replace(tzinfo=UTC).timestamp()
