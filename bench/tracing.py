"""What traces cost: the Bento exporting every request's spans through OTLP against the same Bento untraced.

    make run && .venv/bin/python -m bench.tracing [--rounds 4] [--seconds 15] [--sample-rate 1.0]

The traced server has DEMANDOPS_SERVING__OTLP_ENDPOINT set to an OTLP/HTTP endpoint in this process
(bench/otlp_receiver.py, decoding what arrives as a collector would), so its spans are made and
exported for real: BentoML's server spans, demandops' gateway span, and per batch the online read's
and the model's. Both servers up at once, 64 clients, one random series per request, both start
orders (bench/pair.py). Goal: traced at least 0.95 × untraced. The spans received are counted.
`--with-keys`: the traced server also asks every request for an API key, as production does
(bench/keys.py's setup): what keys and traces cost together.
Results in bench/results/tracing_rate<sample rate>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from bench.keys import KEYED, KEYLESS, key_file
from bench.otlp_receiver import OtlpReceiver
from bench.pair import brief, compare_two, pair_arguments
from bench.serve import bento_of_this_checkout, single_item_bodies
from demandops.settings import get_settings
from serving.api_keys import KeyStore

RESULTS = Path(__file__).parent / "results"
GOAL = 0.95


def main() -> None:
    parser = pair_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--sample-rate", type=float, default=1.0)
    parser.add_argument(
        "--with-keys", action="store_true", help="the traced server also asks for API keys (bench/keys.py's setup)"
    )
    args = parser.parse_args()
    settings = get_settings()
    logs = settings.state / "bench"
    tag = bento_of_this_checkout(settings, logs / "bundle")
    bodies = single_item_bodies(settings, logs)
    keys, made, files = KeyStore(settings.mlflow_database_url), [], {}
    with OtlpReceiver() as receiver:
        traced = {
            "DEMANDOPS_SERVING__OTLP_ENDPOINT": receiver.endpoint,
            "DEMANDOPS_SERVING__TRACE_SAMPLE_RATE": str(args.sample_rate),
        }
        try:
            if args.with_keys:
                traced |= KEYED
                files["traced"] = key_file(keys, made, time.strftime("%Y%m%dT%H%M%S"), logs, 1, 10**6, 10**9)
            variants = {"traced": traced, "untraced": KEYLESS}
            cost = compare_two(settings, tag, logs, bodies, args, variants=variants, keys_files=files)
        finally:
            for name in made:
                keys.revoke(name)
        spans = Counter(span.name for span in receiver.spans)
    result = {"config": vars(args), "goal": GOAL, "cost": cost, "spans_received": dict(spans.most_common(12))}
    result["met"] = cost["traced_over_untraced"] >= GOAL
    print(json.dumps({"cost": brief(cost), "spans_received": result["spans_received"], "met": result["met"]}, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"tracing_rate{args.sample_rate:g}{'_with_keys' if args.with_keys else ''}.json").write_text(
        json.dumps(result, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
