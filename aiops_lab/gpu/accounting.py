"""Time accounting of telemetry on the array backend, piece by piece.

GPUs are numbered in (host, GPU, MIG instance) order (:class:`_KeyCoder`), every GPU's
samples are put in time order, the kernels (:mod:`aiops_lab.gpu.kernels`) give each
sample its seconds, and the accountant (:class:`_Accountant`) leaves *runs* per piece
-- a batch of whole GPUs, or a chunk of a log read in time order -- from which
:mod:`aiops_lab.gpu.rollups` builds every table.
"""

from __future__ import annotations

import copy
import functools
import operator
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy, to_numpy
from aiops_lab.errors import EmptyInputError, InputError
from aiops_lab.gpu import kernels as K
from aiops_lab.gpu.cells import _CELL_US, _GPU_KEY, _cells, _cells_frame, _coded_cell_sums
from aiops_lab.gpu.counting import StatsCounter, whole_percent
from aiops_lab.gpu.result import GpuReview
from aiops_lab.gpu.rollups import (
    _BUSY_UTIL,
    _IDLE_SM,
    NO_JOB,
    _jobs,
    _per_gpu,
    _rollup,
    _slice_prices,
    busy_but_idle,
)
from aiops_lab.gpu.stretches import _IdleStretches

_LABELS = ("model", "user", "job_id", "pod", "namespace")
#: the numeric columns the accounting reads
_VALUES = ("util_pct", "sm_active", "mem_used_mib", "mem_total_mib", "power_w", "temp_c")
#: seed of the label hash that finds where a GPU's job, user or pod changes
_SEED = 0x5EED_0F_6B0
#: the key code of a row's GPU, computed in the query where it can be
_KEY = "_gpu_key"


class _OutOfOrder(Exception):
    """A chunk held a GPU sample older than one already accounted."""


class _Restart(Exception):
    """A single read cannot finish exactly; ``reason``: ``"count"`` (too many distinct
    intervals to count), ``"aside"`` (too many samples set aside) or ``"median"`` (a
    provisional median too far above the final one)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _KeyCoder:
    """Dense codes of GPUs (host, GPU index, MIG instance), numbered in sorted key order.

    Strings are cast to an Enum of their sorted levels and GPU indices shifted to start
    at 0, so one integer per row orders rows as ``(host, gpu, mig_instance)`` with nulls
    last, and a lookup table numbers the keys present: no string sort or multi-column
    hash over the rows. Key spaces too large for the table are joined instead.
    """

    #: largest key space held as a lookup table
    MAX_SPACE = 1 << 22

    def __init__(self, hosts: pl.Series, gpus: pl.Series, migs: pl.Series) -> None:
        self.hosts = hosts.drop_nulls().unique().sort()
        self.migs = migs.drop_nulls().unique().sort()
        known = gpus.drop_nulls()
        self.gpu_lo = int(known.min()) if len(known) else 0  # type: ignore[arg-type]
        # the last slot of every part is its null
        self.n_gpu = (int(known.max()) - self.gpu_lo + 1 if len(known) else 0) + 1  # type: ignore[arg-type]
        self.n_host, self.n_mig = len(self.hosts) + 1, len(self.migs) + 1
        self.fits = self.n_host * self.n_gpu * self.n_mig <= self.MAX_SPACE
        self.table = pl.DataFrame()
        self.lookup = np.zeros(0, dtype=np.int64)

    @classmethod
    def of_frame(cls, frame: pl.DataFrame) -> tuple[_KeyCoder, np.ndarray]:
        """A coder for the GPUs in ``frame``, and every row's GPU number."""
        coder = cls(frame["host"], frame["gpu"], frame["mig_instance"])
        if not coder.fits:
            coder._set_table(frame.select(_GPU_KEY).unique())
            return coder, coder.ids(frame)
        codes = coder._codes(frame)
        present = np.bincount(codes, minlength=coder.n_host * coder.n_gpu * coder.n_mig) > 0
        coder._set_table(coder._decode(np.flatnonzero(present)))
        return coder, coder.lookup[codes]

    @classmethod
    def of_keys(cls, keys: pl.DataFrame) -> _KeyCoder:
        """A coder for the distinct GPU keys in ``keys``."""
        coder = cls(keys["host"], keys["gpu"], keys["mig_instance"])
        coder._set_table(keys.select(_GPU_KEY).unique())
        return coder

    def subset(self, keep: np.ndarray) -> _KeyCoder:
        """A coder of the GPUs where ``keep`` is True, numbered in the same order."""
        coder = copy.copy(self)
        coder._set_table(self.table.filter(pl.Series(keep)).select(_GPU_KEY))
        return coder

    def ids(self, frame: pl.DataFrame) -> np.ndarray:
        """Every row's GPU number (its row in :attr:`table`)."""
        if self.fits:
            ids = self.lookup[self._codes(frame)]
        else:
            ids = (
                frame.select(_GPU_KEY)
                .join(self.table.select(*_GPU_KEY, "_g"), on=list(_GPU_KEY), how="left",
                      nulls_equal=True, maintain_order="left")["_g"]
                .fill_null(-1)
                .to_numpy()
            )  # fmt: skip
        if ids.size and int(ids.min()) < 0:
            raise InputError("A telemetry chunk holds a GPU that the first pass over the input did not see.")  # fmt: skip
        return ids

    def _set_table(self, keys: pl.DataFrame) -> None:
        self.table = (
            keys.sort(_GPU_KEY, nulls_last=True)
            .with_row_index("_g")
            .with_columns(
                pl.col("_g").cast(pl.Int64),
                pl.struct("host", "gpu").rle_id().cast(pl.Int64).alias("_pg"),
            )
        )
        if self.fits:
            self.lookup = np.full(self.n_host * self.n_gpu * self.n_mig, -1, dtype=np.int64)
            self.lookup[self._codes(self.table)] = np.arange(self.table.height)

    def _level_code(self, col: str, levels: pl.Series) -> pl.Expr:
        if len(levels) == 0:
            return pl.lit(0, dtype=pl.Int64)
        return (
            pl.col(col).cast(pl.Enum(levels.to_list())).to_physical().cast(pl.Int64).fill_null(len(levels))
        )  # fmt: skip

    def code_expr(self) -> pl.Expr:
        """Every row's key code, as a polars expression (computed in the query)."""
        gpu = (pl.col("gpu").cast(pl.Int64) - self.gpu_lo).fill_null(self.n_gpu - 1)
        host = self._level_code("host", self.hosts)
        mig = self._level_code("mig_instance", self.migs)
        return ((host * self.n_gpu + gpu) * self.n_mig + mig).alias(_KEY)

    def _codes(self, frame: pl.DataFrame) -> np.ndarray:
        if _KEY in frame.columns:
            return frame[_KEY].to_numpy()
        return frame.select(self.code_expr()).to_series().to_numpy()

    def _decode(self, codes: np.ndarray) -> pl.DataFrame:
        mig, rest = codes % self.n_mig, codes // self.n_mig
        gpu, host = rest % self.n_gpu, rest // self.n_gpu
        hosts = pl.concat([self.hosts, pl.Series([None], dtype=pl.Utf8)])
        migs = pl.concat([self.migs, pl.Series([None], dtype=pl.Utf8)])
        return pl.DataFrame(
            {
                "host": hosts.gather(host),
                "gpu": pl.Series(gpu + self.gpu_lo, dtype=pl.Int64)
                .cast(pl.Int32)
                .scatter(np.flatnonzero(gpu == self.n_gpu - 1), None),
                "mig_instance": migs.gather(mig),
            }
        )


def _ordered(
    ids: np.ndarray, t_all: np.ndarray, n_groups: int
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Row order listing every GPU's rows together in time order (None: already so).

    Returns the order, and the GPU numbers and times in that order. Rows keep their
    input order within a GPU unless its times go backwards, when they are sorted.
    """
    order = None
    if ids.size > 1 and bool(np.any(ids[1:] < ids[:-1])):
        # a stable radix sort on 16-bit numbers when they fit
        key = ids.astype(np.uint16) if n_groups <= 0xFFFF else ids
        order = np.argsort(key, kind="stable")
        # the GPU numbers in that order, counted rather than gathered
        group = np.repeat(
            np.arange(n_groups, dtype=ids.dtype), np.bincount(ids, minlength=n_groups)
        )
        t_us = np.take(t_all, order, mode="clip")  # no bounds checks: a permutation
    else:
        group, t_us = ids, t_all
    if t_us.size > 1:
        # times may only go back where one GPU's rows end and the next one's begin
        back = np.flatnonzero(t_us[1:] < t_us[:-1])
        if back.size and bool(np.any(group[back] == group[back + 1])):
            resort = np.lexsort((t_us, group))
            order = resort if order is None else order[resort]
            t_us = t_us[resort]
            group = group[resort]
    return order, group, t_us


def _label_digest(frame: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """A 64-bit hash of each row's labels (equal labels, equal digests)."""
    digest = np.zeros(frame.height, dtype=np.uint64)
    for col in columns:
        digest = digest * np.uint64(0x9E3779B97F4A7C15) ^ frame[col].hash(_SEED).to_numpy()
    return digest


def chunk_query(frame: pl.LazyFrame, coder: _KeyCoder, *, counting: bool = False) -> pl.LazyFrame:
    """The columns :meth:`_Accountant.add_chunk` reads, computed as the log is read.

    The GPU's key code, the time in microseconds, the numbers as float64 with NaN for
    no reading, the labels and a 64-bit digest of them, and with ``counting`` the
    utilization as a whole percent (-1 for another reading): the reader's threads
    compute these while the accounting works on the previous chunk.
    """
    keys = [coder.code_expr()] if coder.fits else [pl.col(c) for c in _GPU_KEY]
    return frame.select(
        *([whole_percent()] if counting else []),
        *keys,
        pl.col("timestamp").dt.epoch("us").alias("_t"),
        *(pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in _VALUES),
        # the chart cell (10 minutes) and utilization band (10 %) of the sample
        (
            pl.col("timestamp").dt.epoch("us") // _CELL_US * 10
            + (pl.col("util_pct").cast(pl.Float64).fill_nan(None).fill_null(0.0) / 10.0)
            .floor()
            .clip(0.0, 9.0)
            .cast(pl.Int64)
        ).alias("_cell_band"),
        *_LABELS,
        # the labels' digest: a sum of their hashes (seeded per column), cheaper than
        # hashing them as one struct
        functools.reduce(
            operator.add, (pl.col(c).hash(_SEED + k) for k, c in enumerate(_LABELS))
        ).alias("_digest"),
    )


class _Accountant:
    """Time accounting of telemetry, piece by piece, merged exactly at the end.

    Every piece leaves *runs*: stretches of one GPU's consecutive samples with the same
    model, user, job, pod and namespace, with the sums the roll-ups need (weights,
    weighted utilization, SM activity sums and counts, peaks). Every table of the
    review is an aggregation of the runs of all pieces, so summing them is exact.

    Pieces are either batches of whole GPUs (:meth:`add`), or, for a long log read in
    order, chunks of consecutive samples (:meth:`add_chunk`), counting every GPU's
    intervals and readings as they come or with its median interval and quantiles known
    from a first pass (:meth:`start_chunks`).
    """

    def __init__(self, xp: Any, idle_threshold: float, prices: pl.DataFrame) -> None:
        self.xp, self.threshold, self.prices = xp, idle_threshold, prices
        self.runs: list[pl.DataFrame] = []
        self.gpus: list[pl.DataFrame] = []
        self.samples: list[Any] = []
        self.period: list[tuple[Any, Any]] = []
        self.n_gpus = self.n_physical = 0
        # the chunked path: per GPU (global numbers) what the first pass found
        self.coder: _KeyCoder | None = None
        #: each MIG instance's profile (GPU key columns, ``mig_profile``), for its price
        self.profiles: pl.DataFrame | None = None
        self.stats: dict[str, np.ndarray] = {}
        self.counter: StatsCounter | None = None  # a single read's counts
        self.stretches = _IdleStretches(0)
        self.aside: list[pl.DataFrame] = []  # samples set aside, weighed at the end
        self.aside_rows = 0
        self.seen = np.zeros(0, dtype=bool)
        #: called with each chunk's rows once its intervals are counted (single read)
        self.check: Any = None
        self.carry: pl.DataFrame | None = None
        self.cell_sums: list[pl.DataFrame] = []
        # the chunks' sums run on a thread of their own (:meth:`_later`)
        self.pool: ThreadPoolExecutor | None = None
        self.pending: deque[Future[None]] = deque()
        self.time_dtype: pl.DataType = pl.Datetime("us", "UTC")

    # -- batches of whole GPUs -----------------------------------------------------------
    def add(self, frame: pl.DataFrame, *, condense: bool) -> None:
        if frame["timestamp"].null_count():
            frame = frame.filter(pl.col("timestamp").is_not_null())
        if frame.height == 0:
            return
        xp = self.xp
        coder, ids = _KeyCoder.of_frame(frame)
        keys = coder.table
        n_groups = keys.height
        g_off, p_off = self.n_gpus, self.n_physical
        self.n_gpus += n_groups
        self.n_physical += int(keys["_pg"].max()) + 1  # type: ignore[arg-type]
        order, group, t_us = _ordered(ids, frame["timestamp"].dt.epoch("us").to_numpy(), n_groups)
        g_x = from_numpy(group, xp)
        weight_x, median = K.sample_weights(xp, g_x, from_numpy(t_us, xp), n_groups)
        weight = to_numpy(weight_x)
        util = _floats(frame["util_pct"], order)
        idle = ~(util >= self.threshold)  # a sample without a reading counts as idle
        idle_run = K.idle_runs(xp, g_x, from_numpy(idle, xp), weight_x, n_groups)
        p50, p95 = K.grouped_quantiles(xp, g_x, from_numpy(util, xp), n_groups, (0.5, 0.95))
        pg = keys["_pg"].to_numpy() + p_off
        mig = "mig_profile" in frame.columns and frame["mig_instance"].null_count() < frame.height
        profiles = _profiles_of(frame) if mig else None
        self.runs.append(self._runs(frame, order, group, weight, keys["host"], pg, g_off))
        self.gpus.append(
            _with_profiles(keys.select(_GPU_KEY), profiles).with_columns(
                pl.Series("_g", np.arange(n_groups, dtype=np.int64) + g_off),
                pl.Series("median_interval_s", to_numpy(median)),
                pl.Series("longest_idle_h", to_numpy(idle_run) / 3600.0),
                pl.Series("p50_util_pct", to_numpy(p50)),
                pl.Series("p95_util_pct", to_numpy(p95)),
            )
        )
        stamps = frame["timestamp"]
        self.period.append((stamps.min(), stamps.max()))
        sorted_keys = keys.select(_GPU_KEY)
        if condense:
            self.samples.append(_cells(sorted_keys, group, t_us, util, weight, idle))
        else:
            self.samples.append((frame, order, group, sorted_keys, weight, idle))

    def _runs(
        self,
        frame: pl.DataFrame,
        rows: np.ndarray | None,
        group: np.ndarray,
        weight: np.ndarray,
        hosts: pl.Series,
        pg: np.ndarray,
        g_off: int,
    ) -> pl.DataFrame:
        """The runs of ``frame``'s ``rows`` (None: every row, already in order).

        ``group`` and ``weight`` are in accounting order (``rows``). Runs are found in
        that order; their sums are taken in the frame's own order (every row tagged with
        its run), so no value column is reordered.
        """
        # a new run wherever the GPU or any label changes; labels are compared through a
        # 64-bit digest of all of them (no string moves), in the accounting order
        change = np.empty(group.shape[0], dtype=bool)
        change[0] = True
        np.not_equal(group[1:], group[:-1], out=change[1:])
        present = [c for c in _LABELS if frame[c].null_count() < frame.height]
        if present:
            digest = _label_digest(frame, present)
            if rows is not None:
                digest = digest[rows]
            change[1:] |= digest[1:] != digest[:-1]
        r_starts = np.flatnonzero(change)
        n_runs = r_starts.shape[0]
        run_sorted = np.cumsum(change, dtype=np.int64) - 1
        if rows is None:
            run_of, w_of = run_sorted, weight
        else:  # rows not accounted now go to one more run, dropped
            run_of = np.full(frame.height, n_runs, dtype=np.int64)
            run_of[rows] = run_sorted
            w_of = np.zeros(frame.height)
            w_of[rows] = weight
        values = {
            c: _floats(frame[c], None) for c in _VALUES if frame[c].null_count() < frame.height
        }
        run_group = group[r_starts]
        first_rows = r_starts if rows is None else rows[r_starts]
        return self._run_table(frame, values, run_of, w_of, n_runs, first_rows, run_group, hosts, pg, g_off)[0]  # fmt: skip

    def _run_table(
        self,
        frame: pl.DataFrame,
        values: dict[str, np.ndarray],
        run_of: np.ndarray,
        w_of: np.ndarray,
        n_runs: int,
        first_rows: np.ndarray,
        run_group: np.ndarray,
        hosts: pl.Series | None = None,
        pg: np.ndarray | None = None,
        g_off: int = 0,
        idle: np.ndarray | None = None,
    ) -> tuple[pl.DataFrame, np.ndarray]:
        """Each run's labels and sums, from every row's run number in the frame's order.

        ``values`` holds the numeric columns (``_VALUES``) with a reading, as float64
        with NaN for none; ``run_of`` numbers rows ``0..n_runs`` (``n_runs``: rows not
        accounted); ``w_of`` their seconds; ``first_rows`` and ``run_group`` each run's
        first row and GPU number; ``idle`` every row's idle flag, when known. Also
        returns every row's utilization times seconds (0 without a reading).
        """
        if hosts is None or pg is None:  # GPU numbers of the chunks' coder
            assert self.coder is not None
            hosts, pg = self.coder.table["host"], self.coder.table["_pg"].to_numpy()
        slots = n_runs + 1

        def total(weights: np.ndarray | None) -> np.ndarray:
            return np.bincount(run_of, weights=weights, minlength=slots)[:n_runs]

        def peak(col: str) -> pl.Series:
            out = np.full(slots, np.nan)
            if col in values:
                np.fmax.at(out, run_of, values[col])  # NaN only where no reading
            return pl.Series(out[:n_runs]).fill_nan(None)

        util = values.get("util_pct")
        if util is None:
            util = np.full(run_of.shape[0], np.nan)
        if idle is None:
            idle = ~(util >= self.threshold)  # no reading counts as idle
        w_idle = np.where(idle, w_of, 0.0)
        util_w = _zero_nan(util * w_of)
        sums = {"_w": total(w_of), "_w_idle": total(w_idle), "_util_w": total(util_w)}
        sums["_n"] = total(None)  # samples: with _sm_n, which efficiency each run used
        for name, col in (("_sm", "sm_active"), ("_power", "power_w")):
            if col not in values:
                sums[f"{name}_sum"] = np.zeros(n_runs)
                sums[f"{name}_n"] = np.zeros(n_runs)
                if name == "_sm":
                    sums["_eff_w"] = sums["_util_w"]
                    sums["_w_bbi"] = np.zeros(n_runs)
                continue
            reading = values[col]
            has = ~np.isnan(reading)
            sums[f"{name}_sum"] = total(np.where(has, reading, 0.0))
            sums[f"{name}_n"] = total(has.astype(np.float64))
            if name == "_sm":  # SM activity where read, else utilization
                sums["_eff_w"] = total(_zero_nan(np.where(has, reading * 100.0, util) * w_of))
                sums["_w_bbi"] = total(np.where(_busy_idle(util, reading), w_of, 0.0))
        sums_frame = pl.DataFrame(
            {
                "_w": sums["_w"],
                "_w_idle": sums["_w_idle"],
                "_util_w": sums["_util_w"],
                "_eff_w": sums["_eff_w"],
                "_w_bbi": sums["_w_bbi"],
                "_sm_sum": sums["_sm_sum"],
                "_sm_n": np.rint(sums["_sm_n"]).astype(np.int64),
                "_n": np.rint(sums["_n"]).astype(np.int64),
                "_power_sum": sums["_power_sum"],
                "_power_n": np.rint(sums["_power_n"]).astype(np.int64),
            }
        ).with_columns(
            peak("mem_used_mib").alias("_mem_peak"),
            peak("mem_total_mib").alias("_mem_total"),
            peak("temp_c").alias("_temp_peak"),
            (pl.col("_w") - pl.col("_w_idle")).alias("_w_active"),
        )
        runs = pl.concat(
            [
                frame.select(_LABELS)[first_rows].with_columns(
                    hosts.gather(run_group),
                    pl.Series("_g", run_group + g_off),
                    pl.Series("_pg", pg[run_group]),
                ),
                sums_frame,
            ],
            how="horizontal",
        )
        return runs, util_w, w_idle

    # -- chunks of consecutive samples ---------------------------------------------------
    #: most samples a single read sets aside before it gives up (:class:`_Restart`)
    ASIDE_LIMIT = 1 << 19
    #: intervals a GPU shows before its provisional median is taken
    PROVISIONAL_INTERVALS = 16

    def start_chunks(
        self,
        coder: _KeyCoder,
        median: np.ndarray | None = None,
        p50: np.ndarray | None = None,
        p95: np.ndarray | None = None,
        *,
        time_dtype: pl.DataType | None = None,
    ) -> None:
        """Account chunks of :func:`chunk_query` next.

        With each GPU's ``median`` interval (and utilization ``p50`` / ``p95``) known,
        every sample's seconds are known as its chunk comes. Without (a *single read*,
        the query built with ``counting=True``), the chunks' intervals and readings are
        counted as they come, each GPU's *provisional* median is taken from its first
        :attr:`PROVISIONAL_INTERVALS` intervals, and a sample whose interval exceeds
        1.5 times it is *set aside*: accounted with 0 seconds, and kept, to be added with
        its capped seconds once the final median is known (:meth:`finish_chunks`). Every
        other sample's seconds are its interval, exactly, as long as 1.5 times the
        provisional median is at most twice the final one; :class:`_Restart` is raised
        otherwise, or when more than :attr:`ASIDE_LIMIT` samples were set aside.
        """
        n = coder.table.height
        self.coder, self.carry = coder, None
        self.time_dtype = _micro(time_dtype or pl.Datetime("us", "UTC"))
        self.stretches = _IdleStretches(n)
        self.close()
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="aiops-lab-sums")
        self.aside, self.aside_rows = [], 0
        self.seen = np.zeros(n, dtype=bool)
        if median is None:
            self.counter = StatsCounter(n)
            # intervals per GPU so far, kept here too: the counter is updated on the
            # summing thread, while provisional medians are taken on this one
            self.n_intervals = np.zeros(n, dtype=np.int64)
            self.provisional = np.full(n, np.nan)
            self.tau = np.full(n, -1.0)  # set aside above (µs); -1: every interval
            self.stats = {}
        else:
            self.counter = None
            self.stats = {"median": median, "p50": p50, "p95": p95}  # type: ignore[dict-item]

    def add_chunk(self, chunk: pl.DataFrame | None, *, final: bool) -> None:
        """Account the next chunk of :func:`chunk_query` (``None``: only the held-back rows).

        Each GPU's last sample so far is held back: the next chunk holding that GPU
        gives the time its interval ends, and it is accounted then, on its own, before
        that chunk; ``final`` accounts the held-back samples left with their GPU's
        median interval. Only times, GPU numbers and label digests are put in (GPU,
        time) order; every sum is taken over the rows in the order they were read, each
        tagged with its run. Raises :class:`_OutOfOrder` when a chunk goes back in time
        for some GPU.
        """
        assert self.coder is not None
        n_groups = self.coder.table.height
        if chunk is None or chunk.height == 0:
            if final and self.carry is not None:
                held = self.carry
                self.carry = None
                self._add_held(held, self.stats["median"][held["_g"].to_numpy()])
            return
        assert not (final and self.counter is not None), "a single read ends with finish_chunks"
        t_all = chunk["_t"].to_numpy()
        self.period.append((int(t_all.min()), int(t_all.max())))
        ids = self.coder.ids(chunk)
        order, group, t_us = _ordered(ids, t_all, n_groups)
        rows = np.arange(chunk.height) if order is None else order
        counts = np.bincount(group, minlength=n_groups)
        ends = np.cumsum(counts)
        present = counts > 0
        self.seen |= present
        last = ends[present] - 1  # each GPU's last row here
        xp = self.xp
        held = g_held = held_dt = None
        if self.carry is not None:  # held-back rows whose interval this chunk ends
            held_g = self.carry["_g"].to_numpy()
            ends_here = present[held_g]
            if ends_here.any():
                first_t = np.zeros(n_groups, dtype=np.int64)
                first_t[present] = t_us[ends[present] - counts[present]]
                held = self.carry.filter(pl.Series(ends_here))
                g_held = held_g[ends_here]
                held_dt = first_t[g_held] - held["_t"].to_numpy()
                if bool(np.any(held_dt < 0)):
                    raise _OutOfOrder
                self.carry = self.carry.filter(~pl.Series(ends_here))
        if self.counter is not None:
            dt_x, same_x = K.next_intervals(xp, from_numpy(group, xp), from_numpy(t_us, xp))
            dt_us, same_next = to_numpy(dt_x), to_numpy(same_x)
            g_in, dt_in = group[same_next], dt_us[same_next]
            self.n_intervals += np.bincount(g_in, minlength=n_groups)
            if g_held is not None:
                self.n_intervals[g_held] += 1
            count = (
                self._count, ids, chunk["_whole"].to_numpy(), chunk["util_pct"], g_held, held_dt,
                g_in, dt_in, chunk.height,
            )  # fmt: skip
            new = np.isnan(self.provisional) & (self.n_intervals >= self.PROVISIONAL_INTERVALS)
            if new.any():  # their provisional medians, from every interval so far
                self._drain()
                count[0](*count[1:])
                self.provisional[new] = self.counter.medians(self.xp)[new]
                self.tau[new] = 1.5e6 * self.provisional[new]
            else:
                self._later(*count)
            if held is not None:
                aside_held = held_dt > self.tau[g_held]  # type: ignore[operator, index]
                self._add_held(
                    held, np.where(aside_held, 0.0, held_dt / 1e6),  # type: ignore[operator]
                    aside=aside_held, dt=held_dt,
                )  # fmt: skip
            # a GPU's last row here has no interval yet: held back below
            aside = dt_us > np.take(self.tau, group, mode="clip")
            aside &= same_next
            weight = np.where(aside, 0.0, dt_us / 1e6)
        else:
            if held is not None:
                cap = 2.0 * self.stats["median"][g_held]
                self._add_held(held, np.minimum(held_dt / 1e6, cap))  # type: ignore[operator]
            aside = None
            weight = to_numpy(
                K.capped_weights(
                    xp, from_numpy(group, xp), from_numpy(t_us, xp),
                    from_numpy(self.stats["median"], xp),
                )
            )  # fmt: skip
        # runs: a new one wherever the GPU or the labels (their digest) change
        digest = chunk["_digest"].to_numpy()
        if order is not None:
            digest = np.take(digest, order, mode="clip")
        change = np.empty(group.shape[0], dtype=bool)
        change[0] = True
        np.not_equal(group[1:], group[:-1], out=change[1:])
        change[1:] |= digest[1:] != digest[:-1]
        run_sorted = np.cumsum(change, dtype=np.int64) - 1
        n_runs = int(run_sorted[-1]) + 1
        kept_runs = None
        drop = None
        if not final:  # each GPU's last row waits for the next chunk to end its interval
            weight[last] = 0.0
            if change[last].any():  # runs the held-back rows alone would open
                kept_runs = np.ones(n_runs, dtype=bool)
                kept_runs[run_sorted[last][change[last]]] = False
            run_sorted[last] = n_runs
            drop = np.zeros(chunk.height, dtype=bool)
            drop[rows[last]] = True
            held = chunk[rows[last]].with_columns(pl.Series("_g", group[last]))
            self.carry = held if self.carry is None else pl.concat([self.carry, held]).sort("_g")
        if order is None:
            run_of, w_of = run_sorted, weight
        else:
            run_of = np.empty_like(run_sorted)
            run_of[order] = run_sorted
            w_of = np.empty_like(weight)
            w_of[order] = weight
        util = chunk["util_pct"].to_numpy()
        idle = util < self.threshold
        idle |= np.isnan(util)  # a sample without a reading counts as idle
        idle_sorted = idle if order is None else np.take(idle, order, mode="clip")
        stretch = self.stretches.add(xp, group, idle_sorted, weight, aside)
        if aside is not None and aside.any():
            self._set_aside(chunk, rows[aside], group[aside], dt_us[aside], stretch)
        r_starts = np.flatnonzero(change)
        self._later(
            self._sums, chunk, util, idle, run_of, w_of, n_runs, rows[r_starts], group[r_starts],
            ids, kept_runs, drop,
        )  # fmt: skip
        if final:  # rows still held back, of GPUs this chunk did not hold
            self.add_chunk(None, final=True)

    def _count(
        self,
        ids: np.ndarray,
        whole: np.ndarray,
        util: pl.Series,
        g_held: np.ndarray | None,
        held_dt: np.ndarray | None,
        group: np.ndarray,
        dt: np.ndarray,
        rows: int,
    ) -> None:
        """Count a chunk's readings and intervals (those into it first), then :attr:`check`."""
        assert self.counter is not None
        counter = self.counter
        counter.add_readings(ids, whole, util)
        if (
            g_held is not None
            and held_dt is not None
            and not counter.add_intervals(g_held, held_dt)
        ):
            raise _Restart("count")
        if not counter.add_intervals(group, dt):
            raise _Restart("count")
        if self.check is not None:
            self.check(rows)

    def provisional_holds(self, median: np.ndarray | None = None) -> bool:
        """Whether 1.5 times every provisional median is at most twice the ``median``
        (default: the median of the intervals counted so far)."""
        assert self.counter is not None
        taken = ~np.isnan(self.provisional)
        if not taken.any():
            return True
        if median is None:
            median = self.counter.medians(self.xp)
        return not bool(np.any(self.tau[taken] / 1e6 > 2.0 * median[taken]))

    def _add_held(
        self,
        held: pl.DataFrame,
        weight: np.ndarray,
        *,
        aside: np.ndarray | None = None,
        dt: np.ndarray | None = None,
    ) -> None:
        """Account held-back rows (one per GPU, by GPU number) with their seconds.

        ``aside`` marks the rows set aside, ``dt`` their intervals (microseconds).
        """
        g = held["_g"].to_numpy()
        util = held["util_pct"].to_numpy()
        idle = ~(util >= self.threshold)  # a sample without a reading counts as idle
        stretch = self.stretches.add(self.xp, g, idle, weight, aside)
        if aside is not None and dt is not None and aside.any():
            self._set_aside(held, np.flatnonzero(aside), g[aside], dt[aside], stretch)
        rows = np.arange(held.height)
        self._later(self._sums, held, util, idle, rows, weight, held.height, rows, g, g, None, None)

    def _sums(
        self,
        frame: pl.DataFrame,
        util: np.ndarray,
        idle: np.ndarray,
        run_of: np.ndarray,
        w_of: np.ndarray,
        n_runs: int,
        first_rows: np.ndarray,
        run_group: np.ndarray,
        ids: np.ndarray,
        kept_runs: np.ndarray | None,
        drop: np.ndarray | None,
    ) -> None:
        """A chunk's (or held-back rows') runs and chart cells, rows in ``frame``'s order.

        ``run_of``, ``w_of``, ``idle`` and ``ids`` (GPU numbers) are per row; runs not in
        ``kept_runs`` and rows in ``drop`` are left out (see :meth:`_run_table`).
        """
        values = {c: frame[c].to_numpy() for c in _VALUES if c != "util_pct"}
        values["util_pct"] = util
        runs, util_w, w_idle = self._run_table(
            frame, values, run_of, w_of, n_runs, first_rows, run_group, idle=idle
        )
        self.runs.append(runs if kept_runs is None else runs.filter(pl.Series(kept_runs)))
        self.cell_sums.append(
            _coded_cell_sums(ids, frame["_cell_band"].to_numpy(), util_w, w_of, w_idle, drop=drop)
        )

    def _later(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the summing thread, after the work given it before.

        The accounting of the next chunk overlaps its previous chunk's sums (NumPy and
        polars let go of the interpreter lock); at most two wait, so memory stays
        bounded. Without a summing thread (:meth:`start_chunks` not called), now.
        """
        if self.pool is None:
            fn(*args)
            return
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > 2:
            self.pending.popleft().result()

    def _drain(self) -> None:
        """Wait for the summing thread's work (raising its errors)."""
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        """Stop the summing thread, if any (after an error, its pending work is dropped)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        self.pending.clear()

    def _set_aside(
        self, frame: pl.DataFrame, rows: np.ndarray, g: np.ndarray, dt: np.ndarray, stretch: Any
    ) -> None:
        """Keep ``frame``'s ``rows`` (GPUs ``g``, intervals ``dt``) to be weighed at the end."""
        self.aside.append(
            frame[rows]
            .select(*_LABELS, "_cell_band", "util_pct", "sm_active")
            .with_columns(pl.Series("_g", g), pl.Series("_dt", dt), pl.Series("_stretch", stretch))
        )
        self.aside_rows += rows.shape[0]
        if self.aside_rows > self.ASIDE_LIMIT:
            raise _Restart("aside")

    def _add_aside(self, median: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Account the samples set aside with their capped seconds, as runs of their own.

        Their readings (SM activity, power, memory) were summed with their chunk's runs;
        these runs carry only what the seconds weigh. Returns the idle samples' stretch
        numbers and seconds.
        """
        assert self.coder is not None
        if not self.aside:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        rec = pl.concat(self.aside)
        self.aside = []
        g = rec["_g"].to_numpy()
        weight = np.minimum(rec["_dt"].to_numpy() / 1e6, 2.0 * median[g])
        util = rec["util_pct"].to_numpy()
        sm = rec["sm_active"].to_numpy()
        idle = ~(util >= self.threshold)
        w_idle = np.where(idle, weight, 0.0)
        util_w = _zero_nan(util * weight)
        table = self.coder.table
        runs = rec.select(_LABELS).with_columns(
            table["host"].gather(g),
            pl.Series("_g", g),
            pl.Series("_pg", table["_pg"].to_numpy()[g]),
            pl.Series("_w", weight),
            pl.Series("_w_idle", w_idle),
            pl.Series("_util_w", util_w),
            pl.Series("_eff_w", _zero_nan(np.where(np.isnan(sm), util, sm * 100.0) * weight)),
            pl.Series("_w_bbi", np.where(_busy_idle(util, sm), weight, 0.0)),
            pl.lit(0.0).alias("_sm_sum"),
            pl.lit(0, dtype=pl.Int64).alias("_sm_n"),
            pl.lit(0, dtype=pl.Int64).alias("_n"),  # counted in their chunk
            pl.lit(0.0).alias("_power_sum"),
            pl.lit(0, dtype=pl.Int64).alias("_power_n"),
            pl.lit(None, dtype=pl.Float64).alias("_mem_peak"),
            pl.lit(None, dtype=pl.Float64).alias("_mem_total"),
            pl.lit(None, dtype=pl.Float64).alias("_temp_peak"),
            pl.Series("_w_active", weight - w_idle),
        )
        self.runs.append(runs.select(self.runs[0].columns) if self.runs else runs)
        self.cell_sums.append(
            _coded_cell_sums(g, rec["_cell_band"].to_numpy(), util_w, weight, w_idle)
        )
        stretch = rec["_stretch"].to_numpy()
        in_stretch = stretch >= 0
        return stretch[in_stretch], weight[in_stretch]

    def finish_chunks(self) -> None:
        """Account the held-back and set-aside samples; build the per-GPU table and cells.

        After a single read, the final medians and quantiles come from the counts first
        (:class:`_Restart` when a provisional median was too far above its final one).
        """
        assert self.coder is not None
        self._drain()  # every chunk counted and summed
        if self.counter is not None:
            median = self.counter.medians(self.xp)
            if not self.provisional_holds(median):
                raise _Restart("median")
            p50, p95 = self.counter.quantiles(self.xp)
            self.stats = {"median": median, "p50": p50, "p95": p95}
        self.add_chunk(None, final=True)
        self._drain()
        self.close()
        longest = self.stretches.longest(*self._add_aside(self.stats["median"]))
        if self.period:  # microseconds, as the chunks give them
            span = pl.Series([min(p[0] for p in self.period), max(p[1] for p in self.period)])
            self.period = [tuple(span.cast(self.time_dtype))]
        keys, s = self.coder.table, self.stats
        gpus = _with_profiles(keys.select(*_GPU_KEY, "_g"), self.profiles).with_columns(
            pl.Series("median_interval_s", s["median"]),
            pl.Series("longest_idle_h", longest / 3600.0),
            pl.Series("p50_util_pct", s["p50"]),
            pl.Series("p95_util_pct", s["p95"]),
        )
        self.gpus = [gpus if self.seen.all() else gpus.filter(pl.Series(self.seen))]
        self.n_gpus = self.gpus[0].height
        if self.cell_sums:
            self.samples = [_cells_frame(keys.select(_GPU_KEY), pl.concat(self.cell_sums))]

    def result(
        self,
        jobs: Any,
        started: float,
        info: Any,
        params: dict[str, Any],
        *,
        known: pl.DataFrame | None = None,
    ) -> GpuReview:
        """The review, from every piece's runs. ``known``: whether the telemetry shows
        each job's usage (:func:`~aiops_lab.gpu.attribution.usage_known`; None: when it
        names jobs anywhere); a job whose usage is unknown has no waste, rather than its
        whole allocation."""
        if not self.runs:
            raise EmptyInputError("The telemetry has no samples with a timestamp.")
        runs = pl.concat(self.runs, how="vertical_relaxed")
        gpus = pl.concat(self.gpus, how="vertical_relaxed")
        runs, unpriced = _priced(runs, gpus, self.prices)
        per_gpu = _per_gpu(runs, gpus)
        by = {name: _rollup(runs, [name]) for name in ("host", "job_id")}
        # time no job holds is idle capacity too: it belongs to "(no job)", not to nobody
        by["user"] = _rollup(runs.with_columns(pl.col("user").fill_null(NO_JOB)), ["user"])
        job_users = (
            runs.filter(pl.col("job_id").is_not_null())
            .group_by("job_id", maintain_order=True)
            .agg(pl.col("user").drop_nulls().first())
        )
        by["job_id"] = by["job_id"].join(job_users, on="job_id", how="left", maintain_order="left")
        by["pod"] = _rollup(runs.filter(pl.col("pod").is_not_null()), ["namespace", "pod"])
        by["pod"] = by["pod"].with_columns(busy_but_idle())
        labelled = runs["job_id"].null_count() < runs.height
        jobs_frame = _jobs(jobs, by["job_id"], self.prices, known=known, labelled=labelled)
        period = (min(p[0] for p in self.period), max(p[1] for p in self.period))
        params = {**params, "backend": info.name, "start": period[0], "end": period[1]}
        if isinstance(self.samples[0], pl.DataFrame):
            samples: Any = pl.concat(self.samples, how="vertical_relaxed")
        else:
            samples = functools.partial(_samples, *self.samples[0])
        return GpuReview(
            samples=samples, per_gpu=per_gpu, per_host=by["host"], per_user=by["user"], per_pod=by["pod"],
            per_job=jobs_frame, params=params, period=period, backend=info,
            elapsed_s=time.perf_counter() - started, unpriced=unpriced,
        )  # fmt: skip


def _profiles_of(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Each MIG instance's profile in ``frame`` (its first one): GPU key, ``mig_profile``."""
    return (
        frame.lazy()
        .filter(pl.col("mig_instance").is_not_null() & pl.col("mig_profile").is_not_null())
        .group_by(*_GPU_KEY)
        .agg(pl.col("mig_profile").first())
        .collect(engine="streaming")
    )


def _with_profiles(keys: pl.DataFrame, profiles: pl.DataFrame | None) -> pl.DataFrame:
    """``keys`` (GPU key columns first) with each GPU's ``mig_profile`` (null: a whole GPU)."""
    if profiles is None or profiles.height == 0:
        return keys.with_columns(pl.lit(None, dtype=pl.Utf8).alias("mig_profile"))
    return keys.join(
        profiles.select(*_GPU_KEY, pl.col("mig_profile").cast(pl.Utf8)),
        on=list(_GPU_KEY), how="left", nulls_equal=True, maintain_order="left",
    )  # fmt: skip


def _priced(
    runs: pl.DataFrame, gpus: pl.DataFrame, prices: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``runs`` with each one's hourly price (``_price``, 0 when unknown), and what had none.

    A MIG instance is priced by its profile (:func:`~aiops_lab.gpu.rollups._slice_prices`).
    The second frame lists the models (and profiles) without a price, with their GPUs
    and GPU-hours, which the review then counts at $0.
    """
    # a MIG instance whose profile is unknown has no price ("", not a whole GPU's)
    profile = gpus.select(
        "_g",
        pl.when(pl.col("mig_instance").is_not_null())
        .then(pl.col("mig_profile").fill_null(""))
        .alias("mig_profile"),
    )
    with_profile = runs.join(profile, on="_g", how="left", maintain_order="left")
    pairs = with_profile.select("model", "mig_profile").unique()
    price = _slice_prices(list(pairs.iter_rows()), prices)
    table = pl.DataFrame(
        {
            "model": [m for m, _ in price],
            "mig_profile": [g for _, g in price],
            "_price": [price[k] for k in price],
        },
        schema={"model": pl.Utf8, "mig_profile": pl.Utf8, "_price": pl.Float64},
    )
    with_price = with_profile.join(
        table, on=["model", "mig_profile"], how="left", nulls_equal=True, maintain_order="left"
    )
    unpriced = (
        with_price.filter(pl.col("_price").is_null())
        .group_by("model", "mig_profile")
        .agg(
            pl.col("_pg").n_unique().alias("n_gpus"),
            (pl.col("_w").sum() / 3600.0).alias("gpu_hours"),
        )
        .sort("gpu_hours", descending=True)
    )
    runs = with_price.with_columns(pl.col("_price").fill_null(0.0)).drop("mig_profile")
    return runs, unpriced


def _micro(dtype: Any) -> pl.DataType:
    """``dtype``'s time zone on microseconds (the unit of the chunks' times)."""
    return pl.Datetime("us", getattr(dtype, "time_zone", None))


def _floats(series: pl.Series, order: np.ndarray | None) -> np.ndarray:
    """A numeric column in row ``order`` (None: as is) as float64, nulls as NaN."""
    if series.dtype != pl.Float64:
        series = series.cast(pl.Float64)
    if series.null_count():
        series = series.fill_null(float("nan"))
    values = series.to_numpy()
    return values if order is None else np.take(values, order)


def _busy_idle(util: np.ndarray, sm: np.ndarray) -> np.ndarray:
    """Samples busy but idle: utilization high, SM activity read and low (NaN: not)."""
    return (util >= _BUSY_UTIL) & (sm < _IDLE_SM)


def _zero_nan(values: np.ndarray) -> np.ndarray:
    """``values`` (a temporary) with NaN set to 0, in place."""
    missing = np.isnan(values)
    if missing.any():
        values[missing] = 0.0
    return values


def _samples(
    frame: pl.DataFrame,
    order: np.ndarray | None,
    group: np.ndarray,
    keys: pl.DataFrame,
    weight: np.ndarray,
    idle: np.ndarray,
) -> pl.DataFrame:
    """Every sample in (GPU, time) order with its seconds (``_w``), idle flag and idle
    seconds (``_w_idle``)."""
    rows = frame.drop(*_GPU_KEY)
    if order is not None:
        rows = rows[order]
    ident = keys[group]
    return pl.concat([ident, rows], how="horizontal").with_columns(
        pl.Series("_w", weight), pl.Series("_idle", idle),
        pl.Series("_w_idle", np.where(idle, weight, 0.0)),
    )  # fmt: skip
