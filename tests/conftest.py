"""Shared test fixtures. Fixture plugins live in tests/support/ and are listed here."""

from __future__ import annotations

import signal

pytest_plugins: list[str] = ["tests.support.server", "tests.support.seaweedfs"]

# A test run started in the background by a non-interactive shell inherits
# SIGINT ignored, and every command the tests start would inherit that too:
# the tests that stop a command with Ctrl-C (SIGINT) then wait for nothing.
# A Python-level handler here is reset to the default on exec, so the
# commands start as a terminal's foreground commands do.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
