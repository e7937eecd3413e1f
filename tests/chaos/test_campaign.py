"""The fault campaign (issue 13) as part of `make test`: two minutes of random faults from a
fixed seed, then the checker's verdict on the whole history.

Only the fault kinds the product survives today are enabled here. Left out until their fixes
land (issue 13), as measured with `python -m sandbox.campaign --faults KIND --duration-s 60`:
- `redis-restart`: kombu's Redis transport crashes workers ("AttributeError: 'NoneType' object
  has no attribute 'hostname'"; 9 deaths in 9 restarts), so the "workers" check fails; no order
  is lost, because the campaign starts replacements as a supervisor would;
- `skew`: the callbacks of orders completed by a worker whose clock runs 120 s ahead are
  scheduled on its clock and go out about 120 s late, so the "final" and "callbacks" checks
  fail (22 of 385 orders still pending 90 s after the heal).
`stop` passes today: the orders a paused worker's POSTs created again were each counted as an
ambiguous attempt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.chaos

SEED = 13
SURVIVED_TODAY = "kill,stop,freeze,outage,429,drop"


@pytest.mark.timeout(400)  # 120 s of faults, up to 90 s to settle, start and stop
def test_two_minutes_of_random_faults_break_no_promise(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed, and CI must run the campaign")
        pytest.skip("redis-server is not installed")
    args = [sys.executable, "-m", "sandbox.campaign", "--duration-s", "120", "--seed", str(SEED)]
    args += ["--faults", SURVIVED_TODAY, "--settle-s", "90", "--out", str(tmp_path), "--json"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=330)
    assert done.stdout, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    broken = {c["name"]: dict(list(c["broken"].items())[:10]) for c in doc["checks"] if not c["ok"]}

    assert done.returncode == 0 and doc["ok"], f"checks broken: {broken}\n{done.stderr[-3000:]}"
    assert doc["figures"]["orders"] > 500
    # It must have done what it says: every enabled kind injected at least once.
    assert set(doc["faults_by_kind"]) == set(SURVIVED_TODAY.split(","))
