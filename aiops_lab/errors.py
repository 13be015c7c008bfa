"""One exception tree for aiops_lab.

Every message names the input at fault (a file, a column or a parameter), what was
expected, what was found, and how to fix it. Catch :class:`AiopsLabError` to handle
anything the package raises on purpose.
"""

from __future__ import annotations

__all__ = [
    "AiopsLabError",
    "AiopsLabWarning",
    "BackendUnavailableError",
    "ColumnNotFoundError",
    "EmptyInputError",
    "InputError",
    "MissingDependencyError",
    "NotifyError",
    "ParameterError",
    "ReportError",
    "SchemaMismatchError",
    "TrackingError",
]


class AiopsLabError(Exception):
    """Base class of every error raised on purpose by aiops_lab."""


class AiopsLabWarning(UserWarning):
    """Base class of aiops_lab's warnings (tests turn them into errors)."""


class ParameterError(AiopsLabError, ValueError):
    """A parameter has a value the function cannot use."""

    def __init__(self, name: str, expected: str, got: object, fix: str = "") -> None:
        self.name, self.expected, self.got = name, expected, got
        msg = f"Parameter {name!r}: expected {expected}, got {got!r}."
        if fix:
            msg += f" {fix}"
        super().__init__(msg)


class InputError(AiopsLabError, ValueError):
    """Input data (a file or a frame) cannot be used as given."""


class ColumnNotFoundError(InputError, KeyError):
    """A requested column is not in the data."""

    def __init__(
        self, column: str, where: str, available: list[str], hint: str | None = None
    ) -> None:
        self.column, self.where, self.available = column, where, list(available)
        shown = ", ".join(repr(c) for c in self.available[:20])
        more = f" (and {len(self.available) - 20} more)" if len(self.available) > 20 else ""
        if hint is None:
            hint = "Check the spelling, or pass `columns=` to choose which columns to compare."
        msg = f"Column {column!r} is not in {where}; it has: {shown}{more}. {hint}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class SchemaMismatchError(InputError):
    """Reference and current data disagree on columns or types."""


class EmptyInputError(InputError):
    """An input has no rows (or a window selected none)."""


class BackendUnavailableError(AiopsLabError, RuntimeError):
    """The requested array backend cannot run on this machine."""


class MissingDependencyError(AiopsLabError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        msg = (
            f"{purpose} needs the optional package {package!r}, which is not installed. "
            f'Install it with: pip install "aiops_lab[{extra}]"'
        )
        super().__init__(msg)


class ReportError(AiopsLabError, RuntimeError):
    """A headless report run failed; the executed notebook (if any) is kept."""

    def __init__(self, msg: str, executed_notebook: object = None) -> None:
        self.executed_notebook = executed_notebook
        super().__init__(msg)


class TrackingError(AiopsLabError, RuntimeError):
    """Logging to MLflow failed (the report itself is unaffected)."""


class NotifyError(AiopsLabError, RuntimeError):
    """Posting an alert to a webhook failed (the report itself is unaffected)."""
