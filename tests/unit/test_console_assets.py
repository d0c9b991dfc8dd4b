"""The console's static assets: shipped as package data, modules resolve, and every
API path the pages call is a public route of the app (no private endpoints).

Fast checks without a browser; the pages themselves run in Chromium in
``tests/e2e/test_console.py``.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import vbs.console
from vbs.api.routers import load_routers
from vbs.console import STATIC_DIR

ROOT = Path(__file__).resolve().parents[2]
_IMPORT = re.compile(r"""^\s*(?:import|export)\s[^;]*?from\s+["'](\.[^"']+)["']""", re.M | re.S)
_API_PATH = re.compile(r"""[`"'](/(?:v1|v2|v3|identity)/[^`"']*)[`"']""")


def _assets() -> list[Path]:
    return sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())


def test_console_exports_are_honest() -> None:
    assert sorted(vbs.console.__all__) == ["MOUNT_PATH", "STATIC_DIR"]
    assert vbs.console.MOUNT_PATH == "/console"


def test_every_asset_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["vbs"]
    base = STATIC_DIR.parents[1]  # src/vbs
    missing = [str(p.relative_to(base)) for p in _assets()
               if not any(fnmatch.fnmatch(str(p.relative_to(base)), g) for g in globs)]
    assert missing == []
    assert {p.suffix for p in _assets()} == {".html", ".css", ".js"}


def test_index_and_module_imports_resolve() -> None:
    index = (STATIC_DIR / "index.html").read_text()
    for ref in re.findall(r'(?:href|src)="([^":#]+)"', index):
        assert (STATIC_DIR / ref).is_file(), ref
    for module in STATIC_DIR.rglob("*.js"):
        for ref in _IMPORT.findall(module.read_text()):
            assert (module.parent / ref).resolve().is_file(), f"{module.name}: {ref}"


def test_no_asset_is_loaded_from_elsewhere() -> None:
    for asset in _assets():
        text = asset.read_text()
        assert "http://" not in text and "https://" not in text, asset.name


def _route_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for router in load_routers():
        for route in router.routes:
            path = getattr(route, "path", "")
            regex = re.sub(r"\{[^}]+\}", "[^/]+", re.escape(path).replace(r"\{", "{")
                           .replace(r"\}", "}"))
            patterns.append(re.compile(f"^{regex}$"))
    return patterns


def test_pages_call_only_public_api_routes() -> None:
    patterns = _route_patterns()
    called = set()
    for module in STATIC_DIR.rglob("*.js"):
        for raw in _API_PATH.findall(module.read_text()):
            path = re.sub(r"\$\{[^}]*\}", "X", raw).replace("{p}", "X").split("?")[0]
            called.add(path)
    assert len(called) >= 15, called  # the scan really found the pages' calls
    unknown = sorted(p for p in called if not any(r.match(p) for r in patterns))
    assert unknown == []
