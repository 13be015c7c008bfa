"""Progress for long work: a widget bar in a notebook, a text bar in a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress_bar"]

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
