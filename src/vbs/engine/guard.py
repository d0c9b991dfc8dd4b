"""The guard of a changed-ranges backup: which unchanged chunks are re-read.

A backup that trusts changed ranges (from FIEMAP or from user hints) copies
the parent's ids for every chunk outside them. To catch a tracker that lies
(a bug, a forged hint file, a snapshot written in place) a sample of those
*unchanged* chunks is read anyway and its ids compared with the parent's;
one mismatch discards the shortcut (docs/architecture.md, "The engine").

The sample is spread over the whole volume: ``k`` evenly spaced ranks among
the unchanged chunks with one random phase per backup, so successive backups
look at different chunks and any unchanged run longer than the stride is
sampled at least once.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_FRACTION", "DEFAULT_MINIMUM", "GuardPolicy", "sample_unchanged"]

DEFAULT_FRACTION = 0.005
DEFAULT_MINIMUM = 16


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """How many unchanged chunks to verify: ``fraction`` of them, at least
    ``minimum``; every one with ``verify_all`` (``--verify-unchanged``)."""

    fraction: float = DEFAULT_FRACTION
    minimum: int = DEFAULT_MINIMUM
    verify_all: bool = False

    def __post_init__(self) -> None:
        if not (0.0 <= self.fraction <= 1.0) or self.minimum < 0:
            raise ValueError("guard fraction must be within [0, 1] and minimum >= 0")

    def sample_size(self, unchanged: int) -> int:
        if self.verify_all:
            return unchanged
        return min(unchanged, max(self.minimum, math.ceil(self.fraction * unchanged)))


def sample_unchanged(
    changed_runs: list[tuple[int, int]],
    eligible: int,
    policy: GuardPolicy,
    rng: random.Random | None = None,
) -> npt.NDArray[np.int64]:
    """Sorted chunk numbers to verify, among ``[0, eligible)`` minus ``changed_runs``.

    ``changed_runs`` are sorted, disjoint ``(first chunk, count)``. Works on
    the runs, never on a per-chunk array, so a 1 TiB volume costs no memory.
    """
    starts: list[int] = []
    lengths: list[int] = []
    pos = 0
    for first, count in changed_runs:
        first = min(first, eligible)
        if first > pos:
            starts.append(pos)
            lengths.append(first - pos)
        pos = max(pos, min(eligible, first + count))
    if pos < eligible:
        starts.append(pos)
        lengths.append(eligible - pos)
    unchanged = sum(lengths)
    k = policy.sample_size(unchanged)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k == unchanged:
        ranks = np.arange(unchanged, dtype=np.int64)
    else:
        phase = (rng or random.Random()).random()
        ranks = np.floor((np.arange(k, dtype=np.float64) + phase) * (unchanged / k))
        ranks = np.minimum(ranks.astype(np.int64), unchanged - 1)
    cum = np.cumsum(np.asarray(lengths, dtype=np.int64))
    seg = np.searchsorted(cum, ranks, side="right")
    before = np.concatenate(([0], cum[:-1]))
    out: npt.NDArray[np.int64] = np.asarray(starts, dtype=np.int64)[seg] + (ranks - before[seg])
    return out
