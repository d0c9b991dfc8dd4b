"""Every vbs.volumes module lists exactly its public names in ``__all__``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import vbs.volumes

MODULES = [vbs.volumes] + [
    importlib.import_module(f"vbs.volumes.{info.name}")
    for info in pkgutil.iter_modules(vbs.volumes.__path__)
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_is_honest(module: ModuleType) -> None:
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "duplicates in __all__"
    missing = {name for name in exported if not hasattr(module, name)}
    assert not missing
    defined_here = {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    }
    assert defined_here <= exported, f"public but not exported: {defined_here - exported}"


def test_package_reexports_every_error() -> None:
    errors = importlib.import_module("vbs.volumes.errors")
    assert set(errors.__all__) <= set(vbs.volumes.__all__)
