"""Chart cells: samples summed per (GPU, 10-minute cell, 10 % utilization band).

The streamed review keeps these instead of every sample: the heat map, the
utilization distribution and the idle GPUs over time come out as from every sample.
"""

from __future__ import annotations

import numpy as np
import polars as pl

#: a GPU's key columns, in sort order
_GPU_KEY = ("host", "gpu", "mig_instance")
#: the streaming path keeps the samples for the charts as 10-minute cells
_CELL_US = 600 * 1_000_000


def _cell_sums(
    group: np.ndarray,
    t_us: np.ndarray,
    util: np.ndarray,
    weight: np.ndarray,
    idle_w: np.ndarray,
    *,
    drop: np.ndarray | None = None,
) -> pl.DataFrame:
    """Samples summed per (GPU number, 10-minute cell, 10 % utilization band).

    ``idle_w`` is each row's seconds when idle, else 0. Rows may come in any order;
    rows where ``drop`` is True are left out.
    """
    has = ~np.isnan(util)
    band = np.clip(np.floor(np.where(has, util, 0.0) / 10.0), 0.0, 9.0).astype(np.int64)
    num = np.where(has, util * weight, 0.0)
    return _coded_cell_sums(group, t_us // _CELL_US * 10 + band, num, weight, idle_w, drop=drop)


def _coded_cell_sums(
    group: np.ndarray,
    cell_band: np.ndarray,
    num: np.ndarray,
    weight: np.ndarray,
    idle_w: np.ndarray,
    *,
    drop: np.ndarray | None = None,
) -> pl.DataFrame:
    """:func:`_cell_sums` from each row's ``cell * 10 + band`` and ``util * weight`` (0: none)."""
    if drop is not None and drop.all():
        return pl.DataFrame(
            schema={"_gi": pl.Int64, "_cell": pl.Int64, "_band": pl.Float64, "_num": pl.Float64, "_w": pl.Float64, "_w_idle": pl.Float64}
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
                "_w_idle": np.bincount(key, weights=idle_w, minlength=size + 1)[used],
            }
        )
    frame = pl.DataFrame(
        {
            "_gi": group,
            "_cell": cell_band // 10 * _CELL_US,
            "_band": (cell_band % 10) * 10.0,
            "_num": num,
            "_w": weight,
            "_w_idle": idle_w,
        }
    )
    if drop is not None:
        frame = frame.filter(~pl.Series(drop))
    return frame.group_by("_gi", "_cell", "_band").agg(pl.col("_num", "_w", "_w_idle").sum())


#: most slots of the dense table that merges cell sums (else a hashed group-by)
_MERGE_SLOTS = 1 << 25


def _merged(sums: pl.DataFrame) -> pl.DataFrame:
    """Cell sums of several pieces added up per (GPU, cell, band), in that order.

    A dense table over the GPUs, the cells from the first to the last and the ten bands
    when it fits :data:`_MERGE_SLOTS` (counted, no hashing or sorting), else a group-by.
    """
    if sums.height == 0:
        return sums
    gi = sums["_gi"].to_numpy()
    cell = sums["_cell"].to_numpy() // _CELL_US
    first = int(cell.min())
    n_cells, n_gpus = int(cell.max()) - first + 1, int(gi.max()) + 1
    size = n_gpus * n_cells * 10
    if size > _MERGE_SLOTS:
        return (
            sums.group_by("_gi", "_cell", "_band")
            .agg(pl.col("_num", "_w", "_w_idle").sum())
            .sort("_gi", "_cell", "_band")
        )
    band = np.rint(sums["_band"].to_numpy() / 10.0).astype(np.int64)
    key = (gi * n_cells + (cell - first)) * 10 + band
    used = np.flatnonzero(np.bincount(key, minlength=size))
    band_of, rest = used % 10, used // 10
    return pl.DataFrame(
        {
            "_gi": rest // n_cells,
            "_cell": (rest % n_cells + first) * _CELL_US,
            "_band": band_of * 10.0,
            "_num": np.bincount(key, weights=sums["_num"].to_numpy(), minlength=size)[used],
            "_w": np.bincount(key, weights=sums["_w"].to_numpy(), minlength=size)[used],
            "_w_idle": np.bincount(key, weights=sums["_w_idle"].to_numpy(), minlength=size)[used],
        }
    )


def _cells_frame(keys: pl.DataFrame, sums: pl.DataFrame) -> pl.DataFrame:
    """Cell sums (of one or more pieces) as the chart samples of the GPUs in ``keys``.

    ``util_pct`` is the cell's weighted utilization (readings only), ``_w`` its
    seconds, ``_w_idle`` those idle: the heat map and the distribution come out as from
    every sample.
    """
    cells = _merged(sums)
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
            "_w_idle",
        )
    )


def _cells(
    keys: pl.DataFrame,
    group: np.ndarray,
    t_us: np.ndarray,
    util: np.ndarray,
    weight: np.ndarray,
    idle: np.ndarray,
) -> pl.DataFrame:
    """Samples condensed to (GPU, 10-minute cell, 10 % utilization band) for the charts."""
    return _cells_frame(keys, _cell_sums(group, t_us, util, weight, np.where(idle, weight, 0.0)))
