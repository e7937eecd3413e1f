"""The public names of each package exist and are listed once, in order (like httpx's
test_exported_members): whatever `__all__` promises can be imported."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PACKAGES = ["worker", "worker.ledger", "producer", "sandbox"]


@pytest.fixture(params=PACKAGES)
def package(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def test_all_is_sorted_and_unique(package: ModuleType) -> None:
    """Each package lists its public names once, sorted, and lists some."""
    names = list(package.__all__)
    assert names
    assert names == sorted(set(names))


def test_every_exported_name_is_an_attribute(package: ModuleType) -> None:
    """Every name in `__all__` is there on the package."""
    for name in package.__all__:
        assert getattr(package, name, None) is not None, f"{package.__name__}.{name} is missing"


def test_every_exported_name_can_be_imported_from_its_package(package: ModuleType) -> None:
    """`from package import *` and `from package import name` work for every listed name."""
    namespace: dict[str, object] = {}
    exec(f"from {package.__name__} import *", namespace)  # noqa: S102 - our own module names
    missing = sorted(set(package.__all__) - set(namespace))
    assert missing == [], f"{package.__name__} promises {missing}"
    for name in package.__all__:
        exec(f"from {package.__name__} import {name}", {})  # noqa: S102


def test_worker_app_is_the_celery_app() -> None:
    """`worker.app` (what `celery -A worker` finds) is the Celery app of the process package."""
    import worker
    from worker.process.app import app

    assert worker.app is app


def test_unknown_worker_attribute_raises_attribute_error() -> None:
    """The lazy `worker` package still says which name is missing."""
    import worker

    with pytest.raises(AttributeError, match="no_such_name"):
        worker.no_such_name  # noqa: B018
