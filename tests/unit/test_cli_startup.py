"""The command line imports only what the command it runs needs (issue 15: start-up within a
quarter of a second): proven by what is loaded, not by a timed assertion."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from producer.cli import COMMANDS, main

PROBE = """
import json, sys
from producer.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = ("redis", "pydantic", "rich", "celery", "aiohttp", "httpx", "sentry_sdk", "worker.orders")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def loaded(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    result: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_version_loads_no_library_of_the_commands() -> None:
    """`order-dispatch --version` loads neither Redis, pydantic, rich nor the order models."""
    assert loaded("--version") == []


def test_every_lazy_command_resolves_to_a_click_command() -> None:
    """Each name in the lazy table imports to a command of that name."""
    for name in COMMANDS:
        command = main.get_command(None, name)  # type: ignore[arg-type]
        assert command is not None and command.name == name


@pytest.mark.parametrize("name", ["enqueue", "dead"])
def test_a_command_loads_what_it_needs(name: str) -> None:
    """A command that reads orders or Redis loads them when it runs, and not the worker's
    process libraries."""
    modules = loaded(name, "--help")
    assert "celery" not in modules and "aiohttp" not in modules
