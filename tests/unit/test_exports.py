"""The public names of each package exist and are listed once, in order (like httpx's test)."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

PACKAGES = ["worker", "producer", "sandbox"]


@pytest.fixture(params=PACKAGES)
def package(request: pytest.FixtureRequest) -> ModuleType:
    return importlib.import_module(request.param)


def test_all_is_sorted_and_unique(package: ModuleType) -> None:
    names = list(package.__all__)
    assert names
    assert names == sorted(set(names))


def test_every_exported_name_is_an_attribute(package: ModuleType) -> None:
    for name in package.__all__:
        assert getattr(package, name, None) is not None, f"{package.__name__}.{name} is missing"


def test_worker_app_is_the_celery_app() -> None:
    import worker
    from worker.process.app import app

    assert worker.app is app


def test_unknown_worker_attribute_raises_attribute_error() -> None:
    import worker

    with pytest.raises(AttributeError, match="no_such_name"):
        worker.no_such_name  # noqa: B018
