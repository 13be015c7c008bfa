"""``DriftExplorer``: pick a column and a window, see its distribution and stats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import polars as pl

if TYPE_CHECKING:
    from aiops_lab.drift.result import DriftResult

__all__ = ["DriftExplorer"]


class DriftExplorer(widgets.VBox):
    """An interactive view of a :class:`DriftResult` (for exploring; reports never use it)."""

    def __init__(self, result: DriftResult, **kwargs: Any) -> None:
        self.result = result
        columns = result.table["column"].to_list()
        self.column = widgets.Dropdown(options=columns, value=columns[0], description="column")
        self.view = widgets.ToggleButtons(
            options=["distribution", "timeline", "overview"], value="distribution"
        )
        windows = (
            [] if result.windows is None else sorted(set(result.windows["window_start"].to_list()))
        )
        self.window = widgets.SelectionSlider(
            options=[("all", "all")] + [(str(w), w) for w in windows], value="all", description="window",
            layout=widgets.Layout(width="520px"), disabled=not windows,
        )  # fmt: skip
        self.stats = widgets.HTML()
        self.output = widgets.Output()
        for w in (self.column, self.view, self.window):
            w.observe(self._refresh, names="value")
        super().__init__(
            [widgets.HBox([self.column, self.view]), self.window, self.stats, self.output], **kwargs
        )
        self._refresh()

    def _row(self) -> dict[str, Any]:
        source = self.result.table
        if not isinstance(self.window.value, str) and self.result.windows is not None:
            source = self.result.windows.filter(pl.col("window_start") == self.window.value)
        return source.filter(pl.col("column") == self.column.value).row(0, named=True)

    def _refresh(self, *_: Any) -> None:
        row = self._row()
        keys = [
            "kind",
            "n_ref",
            "n_cur",
            "p_adjusted",
            "ks",
            "psi",
            "js",
            "chi2",
            "null_ref",
            "null_cur",
            "drifted",
            "reason",
        ]
        cells = "".join(f"<td><b>{k}</b><br>{_fmt(row.get(k))}</td>" for k in keys if k in row)
        self.stats.value = f"<table><tr>{cells}</tr></table>"
        self.output.clear_output(wait=True)
        with self.output:
            from IPython.display import display

            if self.view.value == "distribution":
                display(self.result.chart("distribution", column=self.column.value))
            elif self.view.value == "timeline" and self.result.windows is not None:
                display(self.result.chart("timeline", columns=[self.column.value]))
            else:
                display(self.result.chart("overview"))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
