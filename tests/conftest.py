"""Shared test fixtures. Fixture plugins live in tests/support/ and are listed here."""

from __future__ import annotations

pytest_plugins: list[str] = ["tests.support.server", "tests.support.seaweedfs"]
