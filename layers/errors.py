"""Typed errors of the layer store; each carries the HTTP status the API answers with."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InputRejected", "RowProblem", "SafegridError"]

MAX_SHOWN = 20


class SafegridError(Exception):
    """Base of safegrid's own errors: a message a user can act on."""

    http_status = 400


@dataclass(frozen=True)
class RowProblem:
    """Why one input row (1-based, in file order) was refused."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


class InputRejected(SafegridError):
    """Input refused as a whole: nothing was written.

    ``problems`` lists the bad rows (all of them; :meth:`lines` shows at most 20),
    ``message`` a problem with the input as a whole (missing file, unknown field...).
    """

    http_status = 422

    def __init__(self, message: str, problems: list[RowProblem] | None = None):
        self.message = message
        self.problems = sorted(problems or [], key=lambda p: p.row)
        super().__init__(message)

    def lines(self, limit: int = MAX_SHOWN) -> list[str]:
        """One readable line per problem, at most ``limit`` and a count of the rest."""
        out = [self.message] + [str(p) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            out.append(f"... and {len(self.problems) - limit} more bad rows")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())
