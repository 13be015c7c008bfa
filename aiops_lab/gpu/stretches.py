"""Idle stretches: every GPU's runs of consecutive idle samples, over pieces of its rows.

A log read in chunks gives each GPU's rows in pieces, in time order; a stretch can run
across pieces, and in a single read some samples' seconds are known only at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aiops_lab.backend import from_numpy, to_numpy
from aiops_lab.gpu import kernels as K


class _IdleStretches:
    """Every GPU's stretches of consecutive idle samples, over pieces of its rows in order.

    A stretch whose samples all have their seconds is *clean*: only each GPU's longest
    is kept. One holding a sample set aside (seconds known only at the end) is *dirty*:
    it keeps a number and its seconds so far, and :meth:`longest` adds the set-aside
    samples' seconds by that number. A GPU's stretch open at the end of one piece
    continues into its next piece that starts idle.
    """

    def __init__(self, n_groups: int) -> None:
        self.best = np.zeros(n_groups)
        self.open = np.zeros(n_groups, dtype=bool)  # the GPU's last row so far is idle
        self.open_s = np.zeros(n_groups)
        self.open_id = np.zeros(n_groups, dtype=np.int64)
        self.open_dirty = np.zeros(n_groups, dtype=bool)
        self.next_id = 0
        self.dirty: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # number, GPU, seconds

    def add(
        self, xp: Any, group: np.ndarray, idle: np.ndarray, weight: np.ndarray, aside: Any = None
    ) -> np.ndarray | None:
        """Add the next piece (rows sorted by GPU, each GPU's in time order).

        Returns the stretch number of every row ``aside`` marks (-1 where busy).
        """
        n_groups = self.best.shape[0]
        first, last, seconds = (
            to_numpy(a)
            for a in K.idle_stretches(
                xp, from_numpy(group, xp), from_numpy(idle, xp), from_numpy(weight, xp)
            )
        )
        counts = np.bincount(group, minlength=n_groups)
        ends = np.cumsum(counts)
        present = counts > 0
        g = group[first]
        goes_on = (first == ends[g] - counts[g]) & self.open[g]
        closing = present & self.open  # open stretches this piece does not continue
        closing[g[goes_on]] = False
        self._close(np.flatnonzero(closing))
        ids = np.arange(self.next_id, self.next_id + first.shape[0], dtype=np.int64)
        self.next_id += first.shape[0]
        dirty = np.zeros(first.shape[0], dtype=bool)
        if goes_on.any():
            g_on = g[goes_on]
            ids[goes_on] = self.open_id[g_on]
            seconds[goes_on] += self.open_s[g_on]
            dirty[goes_on] = self.open_dirty[g_on]
        numbers = None
        if aside is not None:
            rows = np.flatnonzero(aside)
            of = np.searchsorted(first, rows, side="right") - 1
            inside = idle[rows]
            dirty[of[inside]] = True
            numbers = np.full(rows.shape[0], -1, dtype=np.int64)
            numbers[inside] = ids[of[inside]]
        ends_open = last == ends[g] - 1
        self.open[present] = False
        shut = ~ends_open
        self._keep(ids[shut], g[shut], seconds[shut], dirty[shut])
        g_open = g[ends_open]
        self.open[g_open] = True
        self.open_s[g_open] = seconds[ends_open]
        self.open_id[g_open] = ids[ends_open]
        self.open_dirty[g_open] = dirty[ends_open]
        return numbers

    def _keep(self, ids: np.ndarray, g: np.ndarray, seconds: np.ndarray, dirty: np.ndarray) -> None:
        clean = ~dirty
        np.maximum.at(self.best, g[clean], seconds[clean])
        if dirty.any():
            self.dirty.append((ids[dirty], g[dirty], seconds[dirty]))

    def _close(self, g: np.ndarray) -> None:
        if g.size:
            self._keep(self.open_id[g], g, self.open_s[g], self.open_dirty[g])
            self.open[g] = False

    def longest(self, numbers: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Each GPU's longest idle stretch, with set-aside ``seconds`` added by stretch ``numbers``."""
        self._close(np.flatnonzero(self.open))
        best = self.best.copy()
        if self.dirty:
            ids, g, base = (np.concatenate(parts) for parts in zip(*self.dirty, strict=True))
            order = np.argsort(ids)
            ids, g, base = ids[order], g[order], base[order]
            extra = np.bincount(
                np.searchsorted(ids, numbers), weights=seconds, minlength=ids.shape[0]
            )
            np.maximum.at(best, g, base + extra)
        return best
