"""Pure parts of change tracking: extent-map diffs, the guard sample, chunk runs, hints."""

from __future__ import annotations

import random

import pytest

from vbs.engine.changed import ChangeSet, chunk_runs, parse_change_hints
from vbs.engine.guard import GuardPolicy, sample_unchanged
from vbs.errors import ConfigError
from vbs.volumes.changes import diff_extents, merge_ranges
from vbs.volumes.fiemap import FIEMAP_EXTENT_UNWRITTEN, Extent

K = 4096


def ext(logical: int, physical: int, length: int, flags: int = 0) -> Extent:
    return Extent(logical * K, physical * K, length * K, flags)


def test_shared_extents_are_unchanged_and_split_maps_still_match() -> None:
    base = [ext(0, 100, 10)]
    new = [ext(0, 100, 4), ext(4, 104, 6)]  # same blocks, reported as two extents
    assert diff_extents(base, new, 10 * K, 10 * K) == []


def test_cow_write_hole_punch_fill_and_flags_are_changes() -> None:
    base = [ext(0, 100, 10), ext(20, 300, 5)]
    new = [ext(0, 100, 3), ext(3, 900, 2), ext(5, 105, 5),  # rewritten blocks 3-4
           ext(12, 500, 2),  # a hole filled
           ext(20, 300, 2, FIEMAP_EXTENT_UNWRITTEN), ext(22, 302, 1, 0x4)]  # flags; 23-24 punched
    assert diff_extents(base, new, 30 * K, 30 * K) == [
        (3 * K, 2 * K), (12 * K, 2 * K), (20 * K, 5 * K)]


def test_grown_volume_tail_is_changed_and_shrunk_is_clipped() -> None:
    base = [ext(0, 100, 4)]
    assert diff_extents(base, base, 4 * K, 6 * K) == [(4 * K, 2 * K)]
    assert diff_extents(base, base, 4 * K, 2 * K) == []


def test_merge_ranges() -> None:
    assert merge_ranges([(10, 5), (0, 10), (30, 1), (15, 0), (31, 4)]) == [(0, 15), (30, 5)]


def test_sample_is_spread_excludes_changed_and_honours_minimum() -> None:
    runs = [(100, 50), (500, 400)]
    picked = sample_unchanged(runs, 10_000, GuardPolicy(), random.Random(1)).tolist()
    assert len(picked) == max(16, -(-(10_000 - 450) * 5 // 1000))
    assert picked == sorted(set(picked))
    assert not any(100 <= c < 150 or 500 <= c < 900 for c in picked)
    gaps = [b - a for a, b in zip(picked, picked[1:], strict=False)]
    assert max(gaps) < 2 * (10_000 // len(picked)) + 450  # evenly spread
    assert len(sample_unchanged([], 10, GuardPolicy(), random.Random(1))) == 10  # min > all
    every = sample_unchanged(runs, 1000, GuardPolicy(verify_all=True)).tolist()
    assert every == [c for c in range(1000) if not (100 <= c < 150 or 500 <= c < 900)]
    assert len(sample_unchanged([(0, 5)], 5, GuardPolicy())) == 0


def test_chunk_runs_cover_partial_chunks_and_size_changes() -> None:
    cs = 64 * 1024
    cset = ChangeSet.build([(cs - 1, 2), (10 * cs, cs), (11 * cs, 1)], "hints")
    assert chunk_runs(cset, cs, 100, 100 * cs, 100 * cs) == [(0, 2), (10, 2)]
    # grown from 50.5 chunks: chunk 50 (its length changed) onwards
    assert chunk_runs(cset, cs, 100, 50 * cs + 7, 100 * cs) == [(0, 2), (10, 2), (50, 50)]
    big = ChangeSet.build([(40 * cs, 30 * cs)], "hints")
    assert chunk_runs(big, cs, 100, 60 * cs, 100 * cs) == [(40, 60)]


def test_parse_hints_formats_and_errors() -> None:
    rbd = b'[{"offset": 0, "length": 10, "exists": "true"}, {"offset": 5, "length": 10,' \
          b' "exists": false}]'
    assert parse_change_hints(rbd, 100) == ChangeSet(((0, 15),), "hints")
    assert parse_change_hints(b"[[50, 10], [0, 0]]", 100).ranges == ((50, 10),)
    for bad in (b"{}", b"[[1]]", b"[[1, 2.5]]", b"[[90, 11]]", b"\xff"):
        with pytest.raises(ConfigError):
            parse_change_hints(bad, 100)
