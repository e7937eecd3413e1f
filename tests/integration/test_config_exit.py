"""Entry points refuse a misspelt variable with exit 78 and its name (SPEC §6)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

TYPO = "DISPATCH_RETRY_MAX_ATEMPTS"
HINT = "did you mean DISPATCH_RETRY_MAX_ATTEMPTS?"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    return {**env, TYPO: "3", "COLUMNS": "200"}


def test_the_worker_does_not_start_on_an_unknown_variable() -> None:
    """`celery -A worker worker` exits 78 naming the variable, before it consumes anything."""
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker", "worker", "-P", "threads", "-c", "1"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78, done.stderr[-2000:]
    assert TYPO in done.stderr and HINT in done.stderr


def test_the_command_line_exits_78_on_an_unknown_variable() -> None:
    """Any command exits 78 naming the variable and the closest known name."""
    done = subprocess.run(
        [sys.executable, "-m", "producer", "stats", "--json"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert TYPO in done.stderr and HINT in done.stderr
