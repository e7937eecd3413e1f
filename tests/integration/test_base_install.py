"""The base install is enough for the ATS sync job: `pip install order-dispatch` without extras
imports `producer` and enqueues into a real Redis, with none of the worker's, the CLI's or the
local tools' libraries present.

The package is installed from a copy of the sources into a fresh virtualenv (PyPI's wheels are
cached under .pytest_cache, so only the first run downloads).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ACCOUNT

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".pytest_cache" / "pip"
SOURCES = ("pyproject.toml", "README.md", "worker", "producer", "sandbox")
# What the extras bring; none of it may be needed to enqueue.
EXTRAS_ONLY = (
    "celery",
    "kombu",
    "aiohttp",
    "httpx",
    "uvloop",
    "uvicorn",
    "starlette",
    "sentry_sdk",
    "prometheus_client",
    "click",
    "rich",
)

SYNC_JOB = """
import importlib.util, json, sys

present = [name for name in sys.argv[1:] if importlib.util.find_spec(name) is not None]

import producer
from producer import Dispatcher
from producer.samples import example_order

orders = []
for i in range(3):
    order = example_order()
    order["id"] = f"sync-{i}"
    orders.append(order)
dispatcher = Dispatcher.from_env()
report = dispatcher.enqueue_many(orders)
again = dispatcher.enqueue_many(orders[:1])
records = dispatcher.records([r.key for r in report.results if r.key])
print(json.dumps({
    "present": present,
    "producer": producer.__file__,
    "accepted": report.accepted,
    "duplicate": again.duplicate,
    "records": [[r.key, r.status] if r else None for r in records],
    "loaded": sorted(
        m for m in sys.modules
        if m.split(".")[0] in sys.argv[1:] or m.startswith("worker.process")
    ),
}))
"""


def _copy_sources(target: Path) -> None:
    target.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def _run(args: list[str], *, timeout_s: float, **kwargs: object) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, **kwargs)  # type: ignore[call-overload]
    command = " ".join(args)[:120]
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return str(done.stdout)


def _venv(tmp_path: Path, extras: str = "") -> tuple[Path, str]:
    """A fresh virtualenv with order-dispatch installed from a copy of the sources."""
    source = tmp_path / "src"
    _copy_sources(source)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout_s=120)
    python = str(venv / "bin" / "python")
    _run(
        [python, "-m", "pip", "install", "--quiet", "--cache-dir", str(CACHE), f"{source}{extras}"],
        timeout_s=540,
    )
    return venv, python


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_the_base_install_imports_producer_and_enqueues_without_any_extra(
    tmp_path: Path, redis_url: str
) -> None:
    """`pip install .` alone runs the sync job's enqueue and read-back against a real Redis."""
    venv, python = _venv(tmp_path)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DISPATCH_REDIS_URL": redis_url,
        "DISPATCH_ACCOUNT_ID": ACCOUNT,
    }
    # -I: the installed package only, never the repository's sources or the test venv's path.
    out = _run([python, "-I", "-c", SYNC_JOB, *EXTRAS_ONLY], timeout_s=60, env=env, cwd=tmp_path)
    result = json.loads(out.strip().splitlines()[-1])

    assert result["present"] == [], "the base install pulled in an extra's library"
    assert Path(result["producer"]).is_relative_to(venv)
    assert result["loaded"] == []
    assert result["accepted"] == 3
    assert result["duplicate"] == 1
    assert result["records"] == [[f"{ACCOUNT}:sync-{i}", "queued"] for i in range(3)]


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_the_cli_extra_enqueues_and_reports_to_sentry_without_the_worker(
    tmp_path: Path, redis_url: str
) -> None:
    """`order-dispatch[cli]` runs the command line (Sentry on) with no Celery, aiohttp or httpx."""
    venv, python = _venv(tmp_path, "[cli]")
    worker_only = (
        "celery",
        "kombu",
        "aiohttp",
        "httpx",
        "uvicorn",
        "starlette",
        "prometheus_client",
    )
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    assert _run([python, "-I", "-c", probe, *worker_only], timeout_s=60).strip() == "[]"

    samples = venv.glob("lib/python*/site-packages/producer/samples/orders.jsonl")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DISPATCH_REDIS_URL": redis_url,
        "DISPATCH_ACCOUNT_ID": ACCOUNT,
        # Nothing listens there: the SDK starts, and its sends fail quietly in the background.
        "SENTRY_DSN": "http://public@127.0.0.1:9/1",
    }
    cli = str(venv / "bin" / "order-dispatch")
    out = _run([cli, "enqueue", "--json", str(next(samples))], timeout_s=60, env=env, cwd=tmp_path)
    outcomes = [json.loads(line)["outcome"] for line in out.splitlines() if line.startswith("{")]
    assert outcomes and set(outcomes) == {"accepted"}
