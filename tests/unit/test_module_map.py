"""The module map in worker/__init__.py names every module of the core and every edge package,
so a newcomer finds the owner of a behaviour there (issue: a layout that shows the architecture)."""

from __future__ import annotations

from pathlib import Path

import worker

ROOT = Path(worker.__file__).parent


def test_every_core_module_and_edge_package_is_on_the_map() -> None:
    """Each worker/*.py module and each worker/<edge>/ package appears in the module map."""
    doc = worker.__doc__ or ""
    core = [p.stem for p in ROOT.glob("*.py") if p.stem != "__init__"]
    edges = [f"worker.{p.name}" for p in ROOT.iterdir() if (p / "__init__.py").exists()]
    missing = [name for name in core + edges if name not in doc]
    assert not missing, f"not on the module map in worker/__init__.py: {missing}"
