"""vbs.frozen.assemble makes the object the dataclass's __init__ would."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest

from vbs.frozen import assemble, field_names


@dataclass(frozen=True)
class Point:
    x: int
    y: int
    label: str = "origin"


def test_same_object_as_the_constructor() -> None:
    names = field_names(Point)
    assert names == ("x", "y", "label")
    built = assemble(Point, names, (1, 2, "p"))
    assert built == Point(1, 2, "p")
    assert hash(built) == hash(Point(1, 2, "p"))
    assert repr(built) == repr(Point(1, 2, "p"))
    assert type(built) is Point


def test_still_frozen() -> None:
    built = assemble(Point, field_names(Point), (1, 2, "p"))
    with pytest.raises(FrozenInstanceError):
        built.x = 5  # type: ignore[misc]


def test_a_missing_value_is_an_error_not_a_default() -> None:
    with pytest.raises(ValueError):
        assemble(Point, field_names(Point), (1, 2))
