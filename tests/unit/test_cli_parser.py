"""The ``vbs`` parser built for one command is the whole parser's part for it.

``main`` builds only the family of a command in SOLE_FAMILY (a faster start
for ``vbs repo backup``); that is only right while each of those commands is
the sole one its family registers, which this checks against the real
families.
"""

from __future__ import annotations

import argparse
import importlib

import pytest

from vbs.cli import FAMILIES, SOLE_FAMILY, build_parser, main


def _commands(family: str) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    importlib.import_module(f"vbs.cli.{family}").register(sub)
    return set(sub.choices)


def test_every_sole_family_command_is_registered_by_that_family_only() -> None:
    by_family = {name: _commands(name) for name in FAMILIES}
    for command, family in SOLE_FAMILY.items():
        assert command in by_family[family]
        others = [f for f, cmds in by_family.items() if command in cmds and f != family]
        assert others == [], f"{command} is also registered by {others}"
    assert {c for f in set(SOLE_FAMILY.values()) for c in by_family[f]} == set(SOLE_FAMILY)


@pytest.mark.parametrize("command", sorted(SOLE_FAMILY))
def test_partial_parser_knows_the_command_like_the_whole_one(command: str) -> None:
    whole = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    part = build_parser(command)._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(part) == {c for c, f in SOLE_FAMILY.items() if f == SOLE_FAMILY[command]}
    assert part[command].format_help() == whole[command].format_help()


def test_unknown_command_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    err = capsys.readouterr().err
    for command in ("repo", "backup", "volume", "serve", "worker"):
        assert command in err
