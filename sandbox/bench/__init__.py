"""`order-dispatch bench`: throughput and costs as ratios against limits measured in the same
run (SPEC §8).

- `run`: the runs and the figures they produce.
- `env`: the surroundings of a run (a private Redis, the sandbox, workers).
- `limits`: what it compares with (direct aiohttp POSTs, a plain Celery task in `peer`).
- `report`: the tables a person reads.
"""
