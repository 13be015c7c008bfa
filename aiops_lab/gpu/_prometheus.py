"""Parse Prometheus text exposition (what dcgm-exporter serves) with polars expressions.

:func:`samples` reads any exposition; :func:`dcgm_samples` and :func:`dcgm_rows` turn
dcgm-exporter's metrics into the telemetry columns (``aiops_lab.gpu.sources.read_dcgm``).

One sample per line, ``METRIC{label="value",...} VALUE [TIMESTAMP_MS]``; ``# HELP`` and
``# TYPE`` comments are skipped. Saved scrapes rarely carry a time stamp per sample, so a
comment line ``# TIMESTAMP <time>`` (or ``# scrape <time>``) sets the time of the samples
that follow it, up to the next such line. ``<time>`` is ISO 8601 (``2026-10-05T14:03:00Z``,
``2026-10-05 16:03:00+02:00``; no zone means UTC) or epoch seconds (values above 1e11 are
read as milliseconds). A per-sample time stamp wins over the comment.

Everything here is an expression over a frame of lines, so large dumps are parsed by polars,
never by a Python loop over rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import polars as pl

from aiops_lab.gpu._schema import _BOUNDS, _ROUNDING

__all__ = ["DCGM_LABELS", "DCGM_METRICS", "dcgm_rows", "dcgm_samples", "iso_times", "samples"]

_SAMPLE = (
    r"^(?P<metric>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?"
    r"[ \t]+(?P<value>\S+)(?:[ \t]+(?P<ms>-?\d+))?[ \t]*$"
)
_STAMP = r"(?i)^#\s*(?:timestamp|scrape)\s*:?\s+(.+?)\s*$"
_UTC = pl.Datetime("us", "UTC")
#: epoch values above this are milliseconds, not seconds (1e11 s is the year 5138)
_EPOCH_MS_ABOVE = 1e11


def iso_times(text: pl.Expr) -> pl.Expr:
    """ISO 8601 text (zone ``Z``, ``+hh:mm``, ``+hhmm`` or none = UTC) or epoch numbers -> UTC."""
    iso = text.str.strip_chars().str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
    iso = iso.str.replace(r"Z$", "+00:00")
    zoned = iso.str.strptime(_UTC, "%Y-%m-%dT%H:%M:%S%.f%z", strict=False)
    naive = iso.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False)
    number = text.str.strip_chars().cast(pl.Float64, strict=False)
    seconds = pl.when(number > _EPOCH_MS_ABOVE).then(number / 1e3).otherwise(number)
    epoch = pl.from_epoch((seconds * 1e6).round().cast(pl.Int64), time_unit="us")
    return pl.coalesce(
        zoned,
        naive.dt.replace_time_zone("UTC"),
        pl.when(number.is_finite()).then(epoch.dt.replace_time_zone("UTC")),
    )


def _label(name: str) -> pl.Expr:
    pattern = r"(?:^|,)\s*" + re.escape(name) + r'\s*=\s*"((?:[^"\\]|\\.)*)"'
    # unescape \" and \\ (the only escapes dcgm-exporter's values need)
    value = pl.col("_labels").str.extract(pattern, 1).str.replace_all(r"\\(.)", "$1")
    # dcgm-exporter writes pod="" for a GPU no pod holds
    return pl.when(value != "").then(value).alias(name)


def samples(lines: pl.LazyFrame, labels: Sequence[str]) -> pl.LazyFrame:
    """One row per sample line: ``metric``, ``value``, ``stamp`` and one column per label.

    Parameters
    ----------
    lines
        Frame with ``_line`` (1-based line number) and ``line`` (the text), in file order.
    labels
        Label names to extract; a missing or empty label gives null.

    Returns
    -------
    polars.LazyFrame
        Columns ``_line``, ``metric``, ``value`` (Float64, NaN -> null), ``stamp``
        (Datetime UTC: the sample's own time stamp, else the last ``# TIMESTAMP`` comment,
        else null), the labels, ``_error`` (why a line is not a sample, else null) and
        ``_last`` (the line is the last one of the file).

    Examples
    --------
    >>> lines = pl.LazyFrame({"_line": [1], "line": ['DCGM_FI_DEV_GPU_UTIL{gpu="0"} 87']})
    >>> samples(lines, ["gpu"]).collect()["value"].to_list()
    [87.0]
    """
    text = pl.col("line").str.strip_chars()
    stamp_text = pl.col("_text").str.extract(_STAMP, 1)
    frame = (
        lines.with_columns(_text=text)
        .filter(pl.col("_text") != "")
        .with_columns(
            _last=pl.col("_line") == pl.col("_line").max(),
            _is_stamp=stamp_text.is_not_null(),
            _scrape=iso_times(stamp_text),
        )
        .with_columns(
            _stamp_error=pl.when(pl.col("_is_stamp") & pl.col("_scrape").is_null()).then(
                pl.concat_str(
                    pl.lit("the time stamp '"),
                    stamp_text,
                    pl.lit("' is neither ISO 8601 (2026-10-05T14:03:00Z) nor epoch seconds"),
                )
            ),
            _scrape=pl.col("_scrape").forward_fill(),
        )
        .filter(pl.col("_is_stamp") | ~pl.col("_text").str.starts_with("#"))
    )
    parts = pl.col("_text").str.extract_groups(_SAMPLE)
    frame = frame.with_columns(
        metric=parts.struct.field("metric"),
        _labels=parts.struct.field("labels"),
        _value=parts.struct.field("value"),
        _ms=parts.struct.field("ms").cast(pl.Int64, strict=False),
    )
    value = pl.col("_value").cast(pl.Float64, strict=False)
    own = pl.from_epoch(pl.col("_ms"), time_unit="ms").cast(pl.Datetime("us"))
    not_sample = pl.concat_str(
        pl.lit("'"),
        pl.col("_text").str.slice(0, 80),
        pl.lit("' is not a Prometheus sample (METRIC{labels} VALUE [TIMESTAMP_MS])"),
    )
    bad_value = pl.concat_str(pl.lit("the value '"), pl.col("_value"), pl.lit("' is not a number"))
    error = (
        pl.when(pl.col("_is_stamp"))
        .then(pl.col("_stamp_error"))
        .when(pl.col("metric").is_null())
        .then(not_sample)
        .when(value.is_null())
        .then(bad_value)
    )
    return (
        frame.select(
            "_line",
            "metric",
            value.fill_nan(None).alias("value"),
            pl.coalesce(own.dt.replace_time_zone("UTC"), pl.col("_scrape")).alias("stamp"),
            *(_label(name) for name in labels),
            error.alias("_error"),
            "_last",
            "_is_stamp",
        )
        .filter(~pl.col("_is_stamp") | pl.col("_error").is_not_null())
        .drop("_is_stamp")
    )


# --------------------------------------------------------------------------- dcgm-exporter

#: dcgm-exporter metric -> working column (names as in dcgm-exporter's etc/*.csv catalogues)
DCGM_METRICS = {
    "DCGM_FI_DEV_GPU_UTIL": "util",
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": "gr_active",
    "DCGM_FI_PROF_SM_ACTIVE": "sm_active",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": "tensor_active",
    "DCGM_FI_DEV_FB_USED": "fb_used",
    "DCGM_FI_DEV_FB_FREE": "fb_free",
    "DCGM_FI_DEV_FB_RESERVED": "fb_reserved",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_GPU_TEMP": "temp_c",
}
DCGM_LABELS = (
    *("gpu", "UUID", "modelName", "Hostname", "GPU_I_PROFILE", "GPU_I_ID"),
    *("container", "namespace", "pod", "hpc_job", "job_id", "slurm_job_id"),
)
#: the metrics behind the range-checked columns, whose lines name an out-of-range value
_RANGED = [(m, n) for m, n in DCGM_METRICS.items() if n in ("util", "gr_active", *_BOUNDS)]
_TWICE = (
    "one metric appears twice for this GPU at one time: the file holds several scrapes "
    "without time stamps; put a '# TIMESTAMP <time>' line before each scrape"
)


def dcgm_samples(lines: pl.LazyFrame) -> pl.LazyFrame:
    """The samples of the metrics we use, plus every line that is not a sample (``_error``)."""
    rows = samples(lines, DCGM_LABELS).filter(
        pl.col("_error").is_not_null() | pl.col("metric").is_in(list(DCGM_METRICS))
    )
    no_gpu = pl.when(pl.col("gpu").cast(pl.Int32, strict=False).is_null()).then(
        pl.concat_str(pl.col("metric"), pl.lit(" has no integer gpu label"))
    )
    return rows.with_columns(_error=pl.coalesce(pl.col("_error"), no_gpu))


def _joined(column: str) -> pl.Expr:
    """Distinct non-null values of a label in a group, comma-separated (null if none)."""
    values = pl.col(column).drop_nulls().unique(maintain_order=True)
    return pl.when(values.len() > 0).then(values.str.join(",")).alias(column)


def dcgm_rows(rows: pl.LazyFrame, host: str, saved: datetime) -> pl.LazyFrame:
    """One row per time, host, GPU and MIG instance, in the telemetry columns.

    ``host`` stands in for a missing ``Hostname`` label and ``saved`` (the file's
    modification time) for a missing time stamp. Adds ``_line``, ``_error``, ``_last``.
    """
    rows = rows.with_columns(
        timestamp=pl.coalesce(pl.col("stamp"), pl.lit(saved).cast(pl.Datetime("us", "UTC"))),
        host=pl.coalesce(pl.col("Hostname"), pl.lit(host)),
        gpu=pl.col("gpu").cast(pl.Int32),
        mig_instance=pl.col("GPU_I_ID"),
        job=pl.coalesce("hpc_job", "job_id", "slurm_job_id"),
    )
    metric = pl.col("metric")
    wide = rows.group_by(["timestamp", "host", "gpu", "mig_instance"], maintain_order=True).agg(
        pl.col("UUID").drop_nulls().first().alias("uuid"),
        pl.col("modelName").drop_nulls().first().alias("model"),
        pl.col("GPU_I_PROFILE").drop_nulls().first().alias("mig_profile"),
        _joined("job").alias("job_id"),
        _joined("pod"),
        _joined("namespace"),
        *(pl.col("value").filter(metric == m).first().alias(n) for m, n in DCGM_METRICS.items()),
        pl.col("_line").min(),
        *(pl.col("_line").filter(metric == m).first().alias(f"_at_{n}") for m, n in _RANGED),
        pl.struct(metric, "pod", "container").is_duplicated().any().alias("_twice"),
    )
    used = pl.col("fb_used")
    wide = wide.with_columns(
        # MIG instances report no GPU_UTIL; the graphics engine's active ratio stands in
        util_pct=pl.coalesce(pl.col("util"), 100.0 * pl.col("gr_active")),
        _at_util_pct=pl.when(pl.col("util").is_not_null())
        .then(pl.col("_at_util"))
        .otherwise(pl.col("_at_gr_active")),
        mem_used_mib=used,
        mem_total_mib=used + pl.col("fb_free") + pl.col("fb_reserved").fill_null(0.0),
        user=pl.lit(None, pl.String),
        source=pl.lit("dcgm"),
        _error=pl.when(pl.col("_twice")).then(pl.lit(_TWICE)),
        _last=pl.lit(False),
    )
    # _finish names a row by its _line: make that the line of a value it will reject, checked
    # in _finish's order (the row's first line stays for every other row)
    line = pl.coalesce(
        pl.when(pl.col("_twice")).then(pl.col("_line")),
        *(
            pl.when((pl.col(c) < 0) | (pl.col(c) > bound * (1 + _ROUNDING))).then(
                pl.col(f"_at_{c}")
            )
            for c, bound in _BOUNDS.items()
        ),
        pl.col("_line"),
    )
    return wide.with_columns(_line=line).drop([f"_at_{n}" for _, n in _RANGED] + ["_at_util_pct"])
