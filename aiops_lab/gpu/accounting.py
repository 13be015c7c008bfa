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
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy, to_numpy
from aiops_lab.errors import EmptyInputError, InputError
from aiops_lab.gpu import kernels as K
from aiops_lab.gpu.result import GpuReview
from aiops_lab.gpu.rollups import NO_JOB, _jobs, _per_gpu, _price_of, _rollup

#: a GPU's key columns, in sort order
_GPU_KEY = ("host", "gpu", "mig_instance")
_LABELS = ("model", "user", "job_id", "pod", "namespace")
#: the numeric columns the accounting reads
_VALUES = ("util_pct", "sm_active", "mem_used_mib", "mem_total_mib", "power_w")
#: seed of the label hash that finds where a GPU's job, user or pod changes
_SEED = 0x5EED_0F_6B0
#: the key code of a row's GPU, computed in the query where it can be
_KEY = "_gpu_key"
#: the streaming path keeps the samples for the charts as 10-minute cells
_CELL_US = 600 * 1_000_000


class _OutOfOrder(Exception):
    """A chunk held a GPU sample older than one already accounted."""


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


def chunk_query(frame: pl.LazyFrame, coder: _KeyCoder) -> pl.LazyFrame:
    """The columns :meth:`_Accountant.add_chunk` reads, computed as the log is read.

    The GPU's key code, the time in microseconds, the numbers as float64 with NaN for
    no reading, the labels and a 64-bit digest of them: the reader's threads compute
    these while the accounting works on the previous chunk.
    """
    keys = [coder.code_expr()] if coder.fits else [pl.col(c) for c in _GPU_KEY]
    return frame.select(
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
    order, chunks of consecutive samples (:meth:`add_chunk`) once every GPU's median
    interval and utilization quantiles are known from a first pass (:meth:`start_chunks`).
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
        self.stats: dict[str, np.ndarray] = {}
        self.carry: pl.DataFrame | None = None
        self.cell_sums: list[pl.DataFrame] = []
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
        self.runs.append(self._runs(frame, order, group, weight, keys["host"], pg, g_off))
        self.gpus.append(
            keys.select(_GPU_KEY).with_columns(
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
            self.samples.append(_cells(sorted_keys, group, t_us, util, weight))
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
        for name, col in (("_sm", "sm_active"), ("_power", "power_w")):
            if col not in values:
                sums[f"{name}_sum"] = np.zeros(n_runs)
                sums[f"{name}_n"] = np.zeros(n_runs)
                if name == "_sm":
                    sums["_eff_w"] = sums["_util_w"]
                continue
            reading = values[col]
            has = ~np.isnan(reading)
            sums[f"{name}_sum"] = total(np.where(has, reading, 0.0))
            sums[f"{name}_n"] = total(has.astype(np.float64))
            if name == "_sm":  # SM activity where read, else utilization
                sums["_eff_w"] = total(_zero_nan(np.where(has, reading * 100.0, util) * w_of))
        sums_frame = pl.DataFrame(
            {
                "_w": sums["_w"],
                "_w_idle": sums["_w_idle"],
                "_util_w": sums["_util_w"],
                "_eff_w": sums["_eff_w"],
                "_sm_sum": sums["_sm_sum"],
                "_sm_n": np.rint(sums["_sm_n"]).astype(np.int64),
                "_power_sum": sums["_power_sum"],
                "_power_n": np.rint(sums["_power_n"]).astype(np.int64),
            }
        ).with_columns(
            peak("mem_used_mib").alias("_mem_peak"),
            peak("mem_total_mib").alias("_mem_total"),
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
        return runs, util_w

    # -- chunks of consecutive samples ---------------------------------------------------
    def start_chunks(
        self,
        coder: _KeyCoder,
        median: np.ndarray,
        p50: np.ndarray,
        p95: np.ndarray,
        *,
        time_dtype: pl.DataType | None = None,
    ) -> None:
        """Account chunks next, with each GPU's median interval and quantiles known."""
        n = coder.table.height
        self.coder, self.carry = coder, None
        self.time_dtype = _micro(time_dtype or pl.Datetime("us", "UTC"))
        self.stats = {
            "median": median, "p50": p50, "p95": p95,
            "longest": np.zeros(n), "trailing": np.zeros(n),
        }  # fmt: skip

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
        t_all = chunk["_t"].to_numpy()
        self.period.append((int(t_all.min()), int(t_all.max())))
        ids = self.coder.ids(chunk)
        order, group, t_us = _ordered(ids, t_all, n_groups)
        rows = np.arange(chunk.height) if order is None else order
        counts = np.bincount(group, minlength=n_groups)
        ends = np.cumsum(counts)
        present = counts > 0
        last = ends[present] - 1  # each GPU's last row here
        if self.carry is not None:  # held-back rows whose interval this chunk ends
            held_g = self.carry["_g"].to_numpy()
            ends_here = present[held_g]
            if ends_here.any():
                first_t = np.zeros(n_groups, dtype=np.int64)
                first_t[present] = t_us[ends[present] - counts[present]]
                held = self.carry.filter(pl.Series(ends_here))
                g_held = held_g[ends_here]
                dt = first_t[g_held] - held["_t"].to_numpy()
                if bool(np.any(dt < 0)):
                    raise _OutOfOrder
                cap = 2.0 * self.stats["median"][g_held]
                self.carry = self.carry.filter(~pl.Series(ends_here))
                self._add_held(held, np.minimum(dt / 1e6, cap))
        xp = self.xp
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
        values = {c: chunk[c].to_numpy() for c in _VALUES}
        util = values["util_pct"]
        idle = util < self.threshold
        idle |= np.isnan(util)  # a sample without a reading counts as idle
        self._idle_parts(
            group, idle if order is None else np.take(idle, order, mode="clip"), weight
        )
        r_starts = np.flatnonzero(change)
        runs, util_w = self._run_table(
            chunk, values, run_of, w_of, n_runs, rows[r_starts], group[r_starts], idle=idle
        )
        self.runs.append(runs if kept_runs is None else runs.filter(pl.Series(kept_runs)))
        cell_band = chunk["_cell_band"].to_numpy()
        self.cell_sums.append(_coded_cell_sums(ids, cell_band, util_w, w_of, drop=drop))
        if final:  # rows still held back, of GPUs this chunk did not hold
            self.add_chunk(None, final=True)

    def _add_held(self, held: pl.DataFrame, weight: np.ndarray) -> None:
        """Account held-back rows (one per GPU, by GPU number) with their seconds."""
        g = held["_g"].to_numpy()
        values = {c: held[c].to_numpy() for c in _VALUES}
        util = values["util_pct"]
        self._idle_parts(g, ~(util >= self.threshold), weight)
        rows = np.arange(held.height)
        runs, util_w = self._run_table(held, values, rows, weight, held.height, rows, g)
        self.runs.append(runs)
        self.cell_sums.append(_coded_cell_sums(g, held["_cell_band"].to_numpy(), util_w, weight))

    def _idle_parts(self, group: np.ndarray, idle: np.ndarray, weight: np.ndarray) -> None:
        """Extend every GPU's idle stretches with the next piece of its rows (in order)."""
        xp = self.xp
        longest, leading, trailing, full = (
            to_numpy(p)
            for p in K.idle_run_parts(
                xp, from_numpy(group, xp), from_numpy(idle, xp), from_numpy(weight, xp),
                self.stats["longest"].shape[0],
            )
        )  # fmt: skip
        s = self.stats
        s["longest"] = np.maximum(np.maximum(s["longest"], longest), s["trailing"] + leading)
        s["trailing"] = np.where(full, s["trailing"] + leading, trailing)

    def finish_chunks(self) -> None:
        """Account the held-back samples and build the per-GPU table and chart cells."""
        self.add_chunk(None, final=True)
        assert self.coder is not None
        if self.period:  # microseconds, as the chunks give them
            span = pl.Series([min(p[0] for p in self.period), max(p[1] for p in self.period)])
            self.period = [tuple(span.cast(self.time_dtype))]
        keys, s = self.coder.table, self.stats
        self.n_gpus = keys.height
        self.gpus = [
            keys.select(*_GPU_KEY, "_g").with_columns(
                pl.Series("median_interval_s", s["median"]),
                pl.Series("longest_idle_h", s["longest"] / 3600.0),
                pl.Series("p50_util_pct", s["p50"]),
                pl.Series("p95_util_pct", s["p95"]),
            )
        ]
        if self.cell_sums:
            self.samples = [_cells_frame(keys.select(_GPU_KEY), pl.concat(self.cell_sums))]

    def result(self, jobs: Any, started: float, info: Any, params: dict[str, Any]) -> GpuReview:
        if not self.runs:
            raise EmptyInputError("The telemetry has no samples with a timestamp.")
        runs = pl.concat(self.runs, how="vertical_relaxed")
        mapping = _price_of(runs["model"].drop_nulls().unique().to_list(), self.prices)
        runs = runs.with_columns(
            pl.col("model")
            .replace_strict(mapping, default=None, return_dtype=pl.Float64)
            .fill_null(0.0)
            .alias("_price")
        )
        gpus = pl.concat(self.gpus, how="vertical_relaxed")
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
        jobs_frame = _jobs(jobs, by["job_id"], self.prices)
        period = (min(p[0] for p in self.period), max(p[1] for p in self.period))
        params = {**params, "backend": info.name, "start": period[0], "end": period[1]}
        if isinstance(self.samples[0], pl.DataFrame):
            samples: Any = pl.concat(self.samples, how="vertical_relaxed")
        else:
            samples = functools.partial(_samples, *self.samples[0])
        return GpuReview(
            samples=samples, per_gpu=per_gpu, per_host=by["host"], per_user=by["user"], per_pod=by["pod"],
            per_job=jobs_frame, params=params, period=period, backend=info,
            elapsed_s=time.perf_counter() - started,
        )  # fmt: skip


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


def _zero_nan(values: np.ndarray) -> np.ndarray:
    """``values`` (a temporary) with NaN set to 0, in place."""
    missing = np.isnan(values)
    if missing.any():
        values[missing] = 0.0
    return values


def _cell_sums(
    group: np.ndarray,
    t_us: np.ndarray,
    util: np.ndarray,
    weight: np.ndarray,
    *,
    drop: np.ndarray | None = None,
) -> pl.DataFrame:
    """Samples summed per (GPU number, 10-minute cell, 10 % utilization band).

    Rows may come in any order; rows where ``drop`` is True are left out.
    """
    has = ~np.isnan(util)
    band = np.clip(np.floor(np.where(has, util, 0.0) / 10.0), 0.0, 9.0).astype(np.int64)
    num = np.where(has, util * weight, 0.0)
    return _coded_cell_sums(group, t_us // _CELL_US * 10 + band, num, weight, drop=drop)


def _coded_cell_sums(
    group: np.ndarray,
    cell_band: np.ndarray,
    num: np.ndarray,
    weight: np.ndarray,
    *,
    drop: np.ndarray | None = None,
) -> pl.DataFrame:
    """:func:`_cell_sums` from each row's ``cell * 10 + band`` and ``util * weight`` (0: none)."""
    if drop is not None and drop.all():
        return pl.DataFrame(
            schema={"_gi": pl.Int64, "_cell": pl.Int64, "_band": pl.Float64, "_num": pl.Float64, "_w": pl.Float64}
        )  # fmt: skip
    first, last = int(cell_band.min()) // 10, int(cell_band.max()) // 10
    n_gpus, n_cells = int(group.max()) + 1, last - first + 1
    if n_gpus * n_cells * 10 <= 1 << 24:  # a dense table of cells: counted, not hashed
        size = n_gpus * n_cells * 10
        key = group * (n_cells * 10) + (cell_band - first * 10)
        if drop is not None:
            key[drop] = size  # one more slot, left out
        w_sum = np.bincount(key, weights=weight, minlength=size + 1)[:size]
        used = np.flatnonzero(np.bincount(key, minlength=size + 1)[:size])
        band_of, rest = used % 10, used // 10
        return pl.DataFrame(
            {
                "_gi": rest // n_cells,
                "_cell": (rest % n_cells + first) * _CELL_US,
                "_band": band_of * 10.0,
                "_num": np.bincount(key, weights=num, minlength=size + 1)[used],
                "_w": w_sum[used],
            }
        )
    frame = pl.DataFrame(
        {
            "_gi": group,
            "_cell": cell_band // 10 * _CELL_US,
            "_band": (cell_band % 10) * 10.0,
            "_num": num,
            "_w": weight,
        }
    )
    if drop is not None:
        frame = frame.filter(~pl.Series(drop))
    return frame.group_by("_gi", "_cell", "_band").agg(pl.col("_num").sum(), pl.col("_w").sum())


def _cells_frame(keys: pl.DataFrame, sums: pl.DataFrame) -> pl.DataFrame:
    """Cell sums (of one or more pieces) as the chart samples of the GPUs in ``keys``.

    ``util_pct`` is the cell's weighted utilization (readings only), ``_w`` its
    seconds: the heat map and the distribution come out as from every sample.
    """
    cells = (
        sums.group_by("_gi", "_cell", "_band")
        .agg(pl.col("_num").sum(), pl.col("_w").sum())
        .sort("_gi", "_cell", "_band")
    )
    ident = keys.with_row_index("_gi").with_columns(pl.col("_gi").cast(pl.Int64))
    return (
        cells.with_columns(pl.col("_gi").cast(pl.Int64))
        .join(ident, on="_gi", how="left")
        .select(
            pl.col("_cell").cast(pl.Datetime("us", "UTC")).alias("timestamp"),
            *_GPU_KEY,
            # a weighted mean of readings in one band lies in it: keep rounding from moving it
            pl.when(pl.col("_w") > 0)
            .then(
                (pl.col("_num") / pl.col("_w")).clip(
                    pl.col("_band"),
                    pl.when(pl.col("_band") < 90.0)
                    .then(pl.col("_band") + 10.0 - 1e-9)
                    .otherwise(100.0),
                )
            )
            .alias("util_pct"),
            "_w",
        )
    )


def _cells(
    keys: pl.DataFrame, group: np.ndarray, t_us: np.ndarray, util: np.ndarray, weight: np.ndarray
) -> pl.DataFrame:
    """Samples condensed to (GPU, 10-minute cell, 10 % utilization band) for the charts."""
    return _cells_frame(keys, _cell_sums(group, t_us, util, weight))


def _samples(
    frame: pl.DataFrame,
    order: np.ndarray | None,
    group: np.ndarray,
    keys: pl.DataFrame,
    weight: np.ndarray,
    idle: np.ndarray,
) -> pl.DataFrame:
    """Every sample in (GPU, time) order with its seconds (``_w``) and idle flag."""
    rows = frame.drop(*_GPU_KEY)
    if order is not None:
        rows = rows[order]
    ident = keys[group]
    return pl.concat([ident, rows], how="horizontal").with_columns(
        pl.Series("_w", weight), pl.Series("_idle", idle)
    )
