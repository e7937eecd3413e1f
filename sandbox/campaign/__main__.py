"""`python -m sandbox.campaign`: run one fault campaign and report; exit 1 when a check fails."""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from sandbox.campaign.nemesis import KINDS
from sandbox.campaign.report import text
from sandbox.campaign.run import Options, run_campaign


def _kinds(value: str) -> list[str]:
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault kinds {unknown}; known: {list(KINDS)}")
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.campaign", description=__doc__)
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument(
        "--faults", type=_kinds, default=list(KINDS), help=f"comma-separated, of {','.join(KINDS)}"
    )
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--rate", type=float, default=8.0, help="orders/s, all producers together")
    parser.add_argument("--settle-s", type=float, default=120.0)
    parser.add_argument("--latency-ms", type=float, default=1000.0, help="the API's, always")
    parser.add_argument("--out", type=Path, default=None, help="directory for the logs")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON document")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    doc = run_campaign(
        Options(
            duration_s=args.duration_s,
            seed=seed,
            faults=args.faults,
            workers=args.workers,
            concurrency=args.concurrency,
            producers=args.producers,
            rate_per_s=args.rate,
            settle_s=args.settle_s,
            latency_ms=args.latency_ms,
            out=args.out,
        )
    )
    print(json.dumps(doc, indent=2) if args.json else text(doc))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
