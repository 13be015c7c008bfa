"""Progress for long work: a widget bar in a notebook, a text bar in a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["dask_compute", "progress_bar"]

T = TypeVar("T")


def progress_bar(
    items: Iterable[T], *, desc: str, enabled: bool = True, total: int | None = None
) -> Iterator[T]:
    """Iterate over ``items`` showing progress (tqdm.auto picks widget or terminal).

    Inside a headless report the runner shows progress per cell; a bar inside the
    notebook would only leave widget debris in the HTML, so none is drawn there.
    """
    from aiops_lab.display import in_report

    if not enabled or in_report():
        yield from items
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, leave=False)


def dask_compute(work: Any, *, client: Any = None, enabled: bool = True) -> Any:
    """Compute Dask ``work`` (one collection or delayed, or a list of them), with progress.

    Runs on ``client``, else on the active ``distributed`` client if there is one, else
    on Dask's default scheduler. The bar counts the graph's tasks: ``distributed``'s
    progress bar (a widget in a notebook, text in a terminal) on a cluster, Dask's
    text bar on the local scheduler. No bar when ``enabled`` is False or in a headless
    report. A list gives a list of results.
    """
    import dask

    from aiops_lab.display import in_report

    show = enabled and not in_report()
    many = isinstance(work, list)
    if client is None:
        try:
            from distributed import default_client

            client = default_client()
        except (ImportError, ValueError):  # no distributed, or no client running
            client = None
    if client is not None:
        futures = client.compute(work if many else [work])
        if show:
            from distributed import progress

            progress(futures)
        results = client.gather(futures)
        return list(results) if many else results[0]
    if show:
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            results = dask.compute(*(work if many else [work]))
    else:
        results = dask.compute(*(work if many else [work]))
    return list(results) if many else results[0]
