"""Imports run one way: core <- edges <- process, and each library has one home.

Every module of worker/, producer/ and sandbox/ is parsed (never imported) and its imports checked
against the module map in `worker/__init__.py`. Tests may import whatever they test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("worker", "producer", "sandbox")
EDGES = ("worker.ledger", "worker.http", "worker.process", "worker.obs")

# Each library and the only places that may import it (a module path, or a folder ending "/").
HOMES: dict[str, tuple[str, ...]] = {
    "celery": ("worker/process/", "sandbox/bench/peer.py"),
    "kombu": ("worker/process/",),
    "aiohttp": ("worker/http/", "sandbox/bench/"),
    "httpx": ("worker/http/", "sandbox/"),
    "sentry_sdk": ("worker/obs/",),
    "prometheus_client": ("worker/obs/",),
    # The cli and local extras: the command line, and what runs pieces on this machine.
    "click": ("producer/cli/",),
    "rich": ("producer/cli/", "sandbox/"),
    "starlette": ("sandbox/",),
    "uvicorn": ("sandbox/",),
    # The guarded transport is kombu's Redis transport: it tells redis-py's errors apart.
    "redis": (
        "worker/ledger/",
        "worker/obs/snapshot.py",
        "worker/obs/metrics.py",
        "worker/process/transport.py",
        "producer/",
        "sandbox/",
    ),
}
# `celery -A worker` finds the app through the package's lazy `__getattr__`; nothing else in
# the core reaches an edge at run time.
CORE_EXCEPTIONS = {("worker/__init__.py", "worker.process.app")}


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository, with "/"
    module: str  # the absolute module name imported
    line: int
    type_checking: bool  # inside `if TYPE_CHECKING:`, so never at run time


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    rel = path.relative_to(ROOT).as_posix()
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = [".".join([*base, node.module] if node.module else base)]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            yield Import(rel, name, node.lineno, id(node) in typing_only)


def _all_imports() -> list[Import]:
    return [
        found
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for found in _imports(path)
    ]


IMPORTS = _all_imports()


def _is_home(path: str, homes: tuple[str, ...]) -> bool:
    return any(path.startswith(home) if home.endswith("/") else path == home for home in homes)


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_scan_sees_every_package_and_relative_imports() -> None:
    """The parser finds imports in every package (an empty scan would pass everything)."""
    paths = {i.path.split("/", 1)[0] for i in IMPORTS}
    assert paths == set(PACKAGES)
    assert any(i.module == "worker.process.app" for i in IMPORTS)


@pytest.mark.parametrize("library", sorted(HOMES))
def test_each_library_is_imported_only_in_its_home(library: str) -> None:
    """celery/kombu in the process package, HTTP clients in http, Sentry and Prometheus in obs."""
    strays = [
        f"{i.path}:{i.line} imports {i.module}"
        for i in IMPORTS
        if _top(i.module) == library and not _is_home(i.path, HOMES[library])
    ]
    assert not strays, f"{library} outside {HOMES[library]}: {strays}"


def test_the_core_reaches_no_edge_at_run_time() -> None:
    """worker/*.py import the edges only for type checking (core <- edges <- process)."""
    strays = [
        f"{i.path}:{i.line} imports {i.module}"
        for i in IMPORTS
        if i.path.count("/") == 1
        and i.path.startswith("worker/")
        and not i.type_checking
        and any(_within(i.module, edge) for edge in EDGES)
        and (i.path, i.module) not in CORE_EXCEPTIONS
    ]
    assert not strays


def test_the_producer_never_imports_the_worker_process() -> None:
    """The sync job's `import producer` (and the CLI) never loads Celery's side of the worker."""
    strays = [
        f"{i.path}:{i.line} imports {i.module}"
        for i in IMPORTS
        if i.path.startswith("producer/") and _within(i.module, "worker.process")
    ]
    assert not strays


def test_the_worker_imports_neither_producer_nor_sandbox() -> None:
    """The worker stands alone: producer and sandbox build on it, never the other way."""
    strays = [
        f"{i.path}:{i.line} imports {i.module}"
        for i in IMPORTS
        if i.path.startswith("worker/") and _top(i.module) in ("producer", "sandbox")
    ]
    assert not strays


def test_report_the_longest_modules(capsys: pytest.CaptureFixture[str]) -> None:
    """Modules stay under ~250 lines: not asserted, printed (`pytest -s`) to keep it in view."""
    lengths = sorted(
        (
            (len(path.read_text(encoding="utf-8").splitlines()), path.relative_to(ROOT).as_posix())
            for package in PACKAGES
            for path in (ROOT / package).rglob("*.py")
        ),
        reverse=True,
    )
    with capsys.disabled():
        print("\nlongest modules:", ", ".join(f"{path} {n}" for n, path in lengths[:8]))
    assert lengths
