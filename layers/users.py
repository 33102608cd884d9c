"""Users, roles, passwords and API tokens.

Passwords are hashed with scrypt (a memory-hard KDF, in the standard library); API
tokens are random and only their SHA-256 is stored, so neither can be read back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine, text

from .errors import BadRequest
from .registry import ROLES

__all__ = [
    "PARTNER_INCIDENTS",
    "User",
    "UserError",
    "add_user",
    "hash_password",
    "issue_token",
    "list_users",
    "remove_user",
    "set_partner_incidents",
    "user_by_name",
    "user_for_token",
    "verify_password",
]

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 8
# What a border partner is given of our incidents in the zone: each as a point, or only
# counts per cell of the zone (collection incident_cells)
PARTNER_INCIDENTS = ("points", "cells")


class UserError(BadRequest):
    """A user cannot be added, found or changed as asked."""

    http_status = 400


@dataclass(frozen=True)
class User:
    """A safegrid user: role, jurisdiction (None for admins) and border partner.

    ``incidents``: for a border partner, whether our incidents in the border zone are
    given as ``points`` or only as counts per cell (``cells``, see
    :data:`PARTNER_INCIDENTS`).
    """

    id: int
    name: str
    role: str
    jurisdiction: str | None
    partner: str | None
    incidents: str = "points"


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) of ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt)}${b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored scrypt hash (constant-time compare)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32,
                         n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got, base64.b64decode(digest))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row_user(row) -> User:
    return User(row.id, row.name, row.role, row.jurisdiction_code, row.partner_code,
                row.partner_incidents)


def add_user(conn: Connection, name: str, role: str, password: str,
             jurisdiction: str | None = None, partner: str | None = None,
             incidents: str = "points") -> User:
    """Create a user after checking role, jurisdiction, partner, incidents and password."""
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise UserError(f"user name {name!r} must be letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role != "admin" and not jurisdiction:
        raise UserError(f"a {role} needs --jurisdiction (only admins have none)")
    if role == "border_partner" and not partner:
        raise UserError("a border_partner needs --partner, the neighbouring city's code")
    if role != "border_partner" and partner:
        raise UserError("--partner is for border_partner users only")
    _check_incidents(role, incidents)
    for code, what in ((jurisdiction, "jurisdiction"), (partner, "partner")):
        if code and not conn.execute(text("SELECT 1 FROM jurisdictions WHERE code = :c"),
                                     {"c": code}).first():
            raise UserError(f"{what} {code!r} is not a jurisdiction code")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if conn.execute(text("SELECT 1 FROM users WHERE name = :n"), {"n": name}).first():
        raise UserError(f"user {name!r} already exists")
    row = conn.execute(text(
        "INSERT INTO users (name, role, jurisdiction_code, partner_code, partner_incidents, "
        "password_hash) VALUES (:n, :r, :j, :p, :i, :h) "
        "RETURNING id, name, role, jurisdiction_code, partner_code, partner_incidents"),
        {"n": name, "r": role, "j": jurisdiction, "p": partner, "i": incidents,
         "h": hash_password(password)}).one()
    return _row_user(row)


def _check_incidents(role: str, incidents: str) -> None:
    if incidents not in PARTNER_INCIDENTS:
        raise UserError(f"--incidents must be one of {', '.join(PARTNER_INCIDENTS)}, "
                        f"got {incidents!r}")
    if role != "border_partner" and incidents != "points":
        raise UserError("--incidents is for border_partner users only")


def set_partner_incidents(conn: Connection, name: str, incidents: str) -> User:
    """What border partner ``name`` is given of our incidents: points or cells only."""
    found = user_by_name(conn, name)
    if found is None:
        raise UserError(f"no user called {name!r}")
    _check_incidents(found[0].role, incidents)
    conn.execute(text("UPDATE users SET partner_incidents = :i WHERE name = :n"),
                 {"i": incidents, "n": name})
    return replace(found[0], incidents=incidents)


def user_by_name(conn: Connection, name: str) -> tuple[User, str] | None:
    """The user called ``name`` and their password hash, or None."""
    row = conn.execute(text(
        "SELECT id, name, role, jurisdiction_code, partner_code, partner_incidents, "
        "password_hash "
        "FROM users WHERE name = :n"), {"n": name}).first()
    return None if row is None else (_row_user(row), row.password_hash)


def list_users(engine: Engine) -> list[User]:
    """All users, by name."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT id, name, role, jurisdiction_code, partner_code, partner_incidents "
            "FROM users ORDER BY name"))
        return [_row_user(r) for r in rows]


def remove_user(conn: Connection, name: str) -> None:
    """Delete a user and their tokens."""
    if conn.execute(text("DELETE FROM users WHERE name = :n"), {"n": name}).rowcount == 0:
        raise UserError(f"no user called {name!r}")


def issue_token(conn: Connection, name: str) -> str:
    """A new API token for ``name``; only its hash is kept."""
    found = user_by_name(conn, name)
    if found is None:
        raise UserError(f"no user called {name!r}")
    token = "sg_" + secrets.token_urlsafe(32)
    conn.execute(text("INSERT INTO api_tokens (user_id, token_hash) VALUES (:u, :h)"),
                 {"u": found[0].id, "h": _token_hash(token)})
    return token


def user_for_token(conn: Connection, token: str) -> User | None:
    """The user an API token belongs to, or None."""
    row = conn.execute(text(
        "SELECT u.id, u.name, u.role, u.jurisdiction_code, u.partner_code, u.partner_incidents "
        "FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = :h"),
        {"h": _token_hash(token)}).first()
    return None if row is None else _row_user(row)
