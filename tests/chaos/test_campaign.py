"""The fault campaign (issue 13) as part of `make test`: two minutes of random faults from a
fixed seed, then the checker's verdict on the whole history.

Every fault kind is enabled: SIGKILL and SIGSTOP of workers, Redis killed and restarted, the
network to Redis frozen, API outages, 429 bursts, replies dropped, and a worker whose clock runs
120 s ahead (`faketime`). The sandbox honours no Idempotency-Key here, as StackOne documents
none: a second POST after an ambiguous attempt creates the order again, and the checker accepts
it only when the order counts that attempt as ambiguous.
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
ALL_KINDS = "kill,stop,redis-restart,freeze,outage,429,drop,skew"


@pytest.mark.timeout(400)  # 120 s of faults, up to 90 s to settle, start and stop
def test_two_minutes_of_random_faults_break_no_promise(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed, and CI must run the campaign")
        pytest.skip("redis-server is not installed")
    args = [sys.executable, "-m", "sandbox.campaign", "--duration-s", "120", "--seed", str(SEED)]
    args += ["--faults", ALL_KINDS, "--settle-s", "90", "--out", str(tmp_path), "--json"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=330)
    assert done.stdout, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    broken = {c["name"]: dict(list(c["broken"].items())[:10]) for c in doc["checks"] if not c["ok"]}

    assert done.returncode == 0 and doc["ok"], f"checks broken: {broken}\n{done.stderr[-3000:]}"
    assert doc["figures"]["orders"] > 500
    # It must have done what it says: every enabled kind injected at least once.
    assert set(doc["faults_by_kind"]) == set(ALL_KINDS.split(","))
