"""Typed errors of safegrid, one class per meaning, each carrying its HTTP status.

The web layer's one error handler answers with ``http_status``; it never redefines one.

How the statuses are chosen:

- 400 :class:`BadRequest`: a query parameter or body field the request cannot use,
  including :class:`UnknownJurisdiction`, a jurisdiction code that is not stored when it
  is named in a parameter (``?jurisdiction=``, ``?a=``, a body's ``jurisdiction``): the
  resource asked for exists, the parameter is wrong.
- 403 :class:`Forbidden`: the user's role or scope does not allow it.
- 404 :class:`NotFound`: the resource named in the path (a feature, a saved run, a tile)
  does not exist or is not one the caller may see.
- 409 :class:`Conflict`: the request clashes with what is stored.
- 412 :class:`PreconditionFailed`: the stored version is not the one the change was
  based on.
- 422 :class:`Unprocessable`: well-formed input that cannot be done as asked
  (:class:`InputRejected`: data refused whole).

Modules refine these (``BadHotspotRequest(BadRequest)``, ``Missing(NotFound)``...)
for their own messages; they never change the meaning of a status.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BadRequest", "Conflict", "Forbidden", "InputRejected", "NotFound",
           "PeerConflict", "PeerUnavailable", "PreconditionFailed", "RowProblem",
           "SafegridError", "UnknownJurisdiction", "Unprocessable"]

MAX_SHOWN = 20


class SafegridError(Exception):
    """Base of safegrid's own errors: a message a user can act on (HTTP 400 unless refined)."""

    http_status = 400


class BadRequest(SafegridError):
    """A query parameter or body field that cannot be used (HTTP 400)."""

    http_status = 400


class UnknownJurisdiction(BadRequest):
    """A jurisdiction code named in a parameter that is not stored (HTTP 400)."""


class Forbidden(SafegridError):
    """The user's role or scope does not allow this (HTTP 403)."""

    http_status = 403


class NotFound(SafegridError):
    """The resource named in the path does not exist, or the caller may not see it (404)."""

    http_status = 404


class Conflict(SafegridError):
    """The request clashes with what is stored (HTTP 409)."""

    http_status = 409


class PreconditionFailed(SafegridError):
    """The stored version is not the one the change was based on (HTTP 412)."""

    http_status = 412


class Unprocessable(SafegridError):
    """Well-formed input that cannot be done as asked (HTTP 422)."""

    http_status = 422


class PeerUnavailable(SafegridError):
    """Another city's server (a peer) did not answer, or not usably (HTTP 502).

    The message names the peer and what went wrong (refused, timed out, a wrong token,
    an answer that is not what its API promises); nothing was written.
    """

    http_status = 502


class PeerConflict(Conflict):
    """A peer refused a change because its data changed meanwhile (its 412), HTTP 409."""


@dataclass(frozen=True)
class RowProblem:
    """Why one input row (1-based, in file order) was refused."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


class InputRejected(Unprocessable):
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
