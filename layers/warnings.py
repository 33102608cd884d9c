"""Standing watches and the risk warnings they raise (风险预警).

A saved emerging hot-spot, near-repeat or risk_places run (``hotspot_runs``) can be
kept as a *watch*: its kind and parameters, with a period of the same length that rolls
forward to end at each check. :func:`check_watches` (``safegrid warnings check``, run by
cron) analyses every watch again through :func:`layers.hotspots.run_emerging`,
:func:`layers.nearrepeat.run_near_repeat` and :func:`layers.riskgrade.run_risk_places`
(each check is saved as a run) and records a *warning* for

- ``emerging_hot_spot``: a cell holding incidents of its own that is a new or
  intensifying hot spot now and was not that category at the previous check (a cell hot
  only through its neighbours' incidents gives an officer nowhere to go: its neighbours
  are warned about);
- ``near_repeat_zone``: a near-repeat risk zone open now that overlaps no zone open at
  the previous check (it ends at the zone's ``until``).

The run a watch is made from is its first "previous check". A warning is recorded once:
``(watch, key)`` is unique, the key naming the cell, its category and the last time step
(or the zone's place and end), so a check run twice records nothing twice.

- ``risk_level``: a key area or grid whose risk level (:mod:`layers.riskgrade`, 1 低 to
  4 重大) is higher now than at the previous check. The watch is made from a saved
  ``risk_places`` run and grades the jurisdiction again on the period of the same
  length ending at the check (:func:`layers.riskgrade.run_risk_places`). A place graded
  for the first time (added since) is not warned about: it had no level to rise from.
  The warning's key names the place, both levels and the local day of the check.

A watch kind is one entry in :data:`CHECKS` (a function turning a watch and a moment
into the new state and the candidate warnings) plus a state reader in :data:`STATES`;
:data:`WATCH_KINDS` names the kind of run each watch kind is made from.

Who sees what: watches are made, listed and removed by police and admins within their
jurisdiction (like the analyses they repeat). Warnings are listed to every role but
border partners (whose scope is the border zone, never a jurisdiction as a whole: the
border API serves them); planners and viewers, who see aggregates, get hot-spot cells
holding at least :data:`layers.hotspots.MIN_SHOWN` incidents and no risk zones (a
zone's circles are drawn around incident points). Police and admins acknowledge them.
Reads and acknowledgements run as the application role under row-level security
(migration 0012). Places are lon/lat (EPSG:4326).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import shapely
from shapely.geometry import shape
from sqlalchemy import Connection, Engine, text

from .access import APP_ROLE, require_within, subtree_codes
from .errors import BadRequest, Conflict, Forbidden, NotFound, SafegridError, UnknownJurisdiction
from .hotspots import AGGREGATE_ONLY, MIN_SHOWN, HotspotQuery, run_emerging
from .nearrepeat import NearRepeatQuery, run_near_repeat
from .riskgrade import RiskPlacesQuery, run_risk_places
from .store import audit_row
from .users import User, user_by_name
from .validate import LOCAL_TZ

__all__ = ["ALERT_CATEGORIES", "CHECKS", "WARNING_KINDS", "WATCH_KINDS", "WATCH_ROLES",
           "Candidate",
           "acknowledge", "check_watches", "create_watch", "delete_watch", "list_warnings",
           "list_watches"]

WATCH_ROLES = ("admin", "police")
WARNING_KINDS = ("emerging_hot_spot", "near_repeat_zone", "risk_level")
# the kind of saved run (hotspot_runs.kind) each kind of watch is made from
WATCH_KINDS = {"emerging": "emerging", "near_repeat": "near_repeat",
               "risk_level": "risk_places"}
ALERT_CATEGORIES = ("new_hot_spot", "intensifying_hot_spot")
_CATEGORY_WORDS = {"new_hot_spot": ("新热点", "new hot spot"),
                   "intensifying_hot_spot": ("加强热点", "intensifying hot spot")}
_WATCH_COLUMNS = ("id, kind, jurisdiction_code, run_id, parameters, period_s, state, "
                  "created_at, created_by, checked_at, last_run, last_error")


@dataclass(frozen=True)
class Candidate:
    """A warning a check may record: its kind, key (unique per watch) and place (lon/lat)."""

    kind: str
    key: str
    geometry: dict  # GeoJSON, EPSG:4326
    place: dict
    message_zh: str
    message_en: str
    until: dt.datetime | None = None


def _require_role(user: User) -> None:
    if user.role not in WATCH_ROLES:
        raise Forbidden(f"role {user.role} may not keep watches; police and admins may")


def _moment(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_)


def _emerging_state(result: dict) -> dict:
    """``{"cells": {"row:col": category}}`` of a saved or fresh emerging answer."""
    cells = {}
    for feature in result.get("features", []):
        p = feature["properties"]
        if p.get("category", "no_pattern") != "no_pattern":
            cells[f"{p['row']}:{p['col']}"] = p["category"]
    return {"cells": cells}


def _near_repeat_state(result: dict) -> dict:
    """``{"zones": [{"geometry", "until"}]}`` of a saved or fresh near-repeat answer."""
    return {"zones": [{"geometry": f["geometry"], "until": f["properties"]["until"]}
                      for f in result.get("features", [])]}


def _risk_level_state(result: dict) -> dict:
    """``{"places": {"key_areas:ID": level, "grids:ID": level}}`` of a risk_places answer."""
    return {"places": {f"{layer}:{f['properties']['id']}": f["properties"]["risk_level"]
                       for layer in ("key_areas", "grids")
                       for f in result.get(layer, {}).get("features", [])}}


STATES: dict[str, Callable[[dict], dict]] = {"emerging": _emerging_state,
                                             "near_repeat": _near_repeat_state,
                                             "risk_level": _risk_level_state}


def _watch_dict(row) -> dict:
    p = row["parameters"]
    return {"id": row["id"], "kind": row["kind"], "jurisdiction": row["jurisdiction_code"],
            "run": row["run_id"], "parameters": p, "period_days": row["period_s"] / 86400,
            "created_at": row["created_at"].isoformat(), "created_by": row["created_by"],
            "checked_at": row["checked_at"].isoformat(), "last_run": row["last_run"],
            "last_error": row["last_error"]}


def create_watch(conn: Connection, user: User, run_id: object) -> dict:
    """Keep saved run ``run_id`` (emerging, near-repeat or risk_places) as a standing watch.

    BadRequest names a run id that is not a whole number, a run that does not exist or
    that the user may not see, or a run of another kind; Forbidden a role that may not
    keep watches. The run's answer is the watch's first state.
    """
    _require_role(user)
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 1:
        raise BadRequest(f"run must be the id of a saved run (a whole number), got {run_id!r}")
    row = conn.execute(text("SELECT kind, jurisdiction_code, parameters, result "
                            "FROM hotspot_runs WHERE id = :i"), {"i": run_id}).mappings().first()
    if row is not None:
        try:
            require_within(conn, user, row["jurisdiction_code"])
        except Forbidden:
            row = None
    if row is None:
        raise BadRequest(f"run {run_id}: there is no hot-spot run {run_id} that you may see")
    kind = next((k for k, run_kind in WATCH_KINDS.items() if run_kind == row["kind"]), None)
    if kind is None:
        raise BadRequest(f"run {run_id} is a {row['kind']} run; only emerging, near_repeat "
                         "and risk_places runs can be watched")
    p = row["parameters"]
    start, end = _moment(p["from"]), _moment(p["to"])
    watch = conn.execute(text(
        f"INSERT INTO watches (kind, jurisdiction_code, run_id, parameters, period_s, state, "
        "created_by, checked_at) VALUES (:k, :j, :r, CAST(:p AS jsonb), :s, "
        f"CAST(:st AS jsonb), :u, :c) RETURNING {_WATCH_COLUMNS}"),
        {"k": kind, "j": row["jurisdiction_code"], "r": run_id, "p": json.dumps(p),
         "s": (end - start).total_seconds(), "st": json.dumps(STATES[kind](row["result"])),
         "u": user.name, "c": end}).mappings().one()
    out = _watch_dict(watch)
    audit_row(conn, user.name, "watches", "insert", None, out, watch["id"])
    return out


def list_watches(conn: Connection, user: User) -> list[dict]:
    """The watches of the user's jurisdiction and below (admins: all), newest first."""
    _require_role(user)
    _enter_scope(conn, user)
    rows = conn.execute(text(f"SELECT {_WATCH_COLUMNS} FROM watches ORDER BY id DESC")
                        ).mappings().all()
    return [_watch_dict(r) for r in rows]


def delete_watch(conn: Connection, user: User, watch_id: int) -> None:
    """Remove a watch (its warnings stay); NotFound for one the user may not see."""
    _require_role(user)
    _enter_scope(conn, user)
    row = conn.execute(text(f"DELETE FROM watches WHERE id = :i RETURNING {_WATCH_COLUMNS}"),
                       {"i": watch_id}).mappings().first()
    if row is None:
        raise NotFound(f"there is no watch {watch_id} that you may see")
    audit_row(conn, user.name, "watches", "delete", _watch_dict(row), None, watch_id)


def _enter_scope(conn: Connection, user: User) -> None:
    """The rest of the transaction as the application role, seeing the user's scope only.

    Row-level security on ``watches`` and ``warnings`` (migration 0012) then hides every
    row of another jurisdiction. A border partner's scope names no jurisdiction.
    """
    codes = [] if user.role in ("admin", "border_partner") or user.jurisdiction is None \
        else subtree_codes(conn, user.jurisdiction)
    conn.execute(text(f"SET LOCAL ROLE {APP_ROLE}"))
    conn.execute(text("SELECT set_config('safegrid.scope_all', :a, true), "
                      "set_config('safegrid.scope_codes', :c, true), "
                      "set_config('safegrid.scope_zone', '', true)"),
                 {"a": "on" if user.role == "admin" else "", "c": ",".join(codes)})


# -- checking ---------------------------------------------------------------------------


def _name(conn: Connection, code: str) -> str:
    return conn.execute(text("SELECT name FROM jurisdictions WHERE code = :c"),
                        {"c": code}).scalar() or code


def _hotspot_query(watch: dict, start: dt.datetime, end: dt.datetime) -> HotspotQuery:
    p = watch["parameters"]
    return HotspotQuery(jurisdiction=watch["jurisdiction_code"], start=start, end=end,
                        category=p.get("category"), cell=p.get("cell"),
                        shape=p.get("shape", "square"),
                        neighbours=p.get("neighbours", "queen"), hours=p.get("hours"),
                        weekdays=p.get("weekdays"))


def _incidents_en(n: int) -> str:
    return f"{n} incident" if n == 1 else f"{n} incidents"


def _check_emerging(conn: Connection, user: User, watch: dict, now: dt.datetime
                    ) -> tuple[dict, int, list[Candidate]]:
    """Cells that became new or intensifying hot spots since the previous state."""
    p = watch["parameters"]
    start = now - dt.timedelta(seconds=watch["period_s"])
    body = run_emerging(conn, user, _hotspot_query(watch, start, now), p.get("step", "month"),
                        int(p.get("time_window", 1)))
    before = watch["state"].get("cells", {})
    step = body["step_edges"][-1]["from"]
    code = watch["jurisdiction_code"]
    name = _name(conn, code)
    found = []
    for feature in body["features"]:
        q = feature["properties"]
        cell, category = f"{q['row']}:{q['col']}", q["category"]
        if category not in ALERT_CATEGORIES or before.get(cell) == category \
                or q["count"] == 0:  # hot through its neighbours only: nothing to go to
            continue
        zh, en = _CATEGORY_WORDS[category]
        found.append(Candidate(
            "emerging_hot_spot", f"cell:{cell}:{category}:{step}", feature["geometry"],
            {"row": q["row"], "col": q["col"], "category": category, "count": q["count"],
             "step_from": step},
            f"{name}（{code}）第{q['row']}行第{q['col']}列网格单元成为{zh}："
            f"本期共{q['count']}起警情",
            f"Cell row {q['row']}, column {q['col']} of {name} ({code}) became a {en}: "
            f"{_incidents_en(q['count'])} in the period"))
    return _emerging_state(body), body["run"], found


def _check_near_repeat(conn: Connection, user: User, watch: dict, now: dt.datetime
                       ) -> tuple[dict, int, list[Candidate]]:
    """Risk zones open now that overlap no zone open at the previous state."""
    p = watch["parameters"]
    start = now - dt.timedelta(seconds=watch["period_s"])
    nr = NearRepeatQuery(space_bands=tuple(p["space_bands"]),
                         time_bands=tuple(p["time_bands"]), permutations=p["permutations"],
                         seed=p["seed"], band=tuple(p["band"]))
    body = run_near_repeat(conn, user, _hotspot_query(watch, start, now), nr)
    before = [shape(z["geometry"]) for z in watch["state"].get("zones", [])]
    code = watch["jurisdiction_code"]
    name = _name(conn, code)
    found = []
    for feature in body["features"]:
        zone = shape(feature["geometry"])
        if any(zone.intersects(old) for old in before):
            continue
        until = _moment(feature["properties"]["until"])
        n = feature["properties"]["incidents"]
        at = shapely.centroid(zone)
        local = until.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
        found.append(Candidate(
            "near_repeat_zone", f"zone:{until.isoformat()}:{at.x:.6f},{at.y:.6f}",
            feature["geometry"], {"incidents": n, "space_m": p["band"][0],
                                  "days": p["band"][1]},
            f"{name}（{code}）出现近重复风险区：{n}起警情，有效至{local}",
            f"A near-repeat risk zone opened in {name} ({code}): {_incidents_en(n)}, open until "
            f"{local}", until))
    return _near_repeat_state(body), body["run"], found


_PLACE_WORDS = {"key_areas": ("重点区域", "key area"), "grids": ("网格", "grid")}


def _check_risk_level(conn: Connection, user: User, watch: dict, now: dt.datetime
                      ) -> tuple[dict, int, list[Candidate]]:
    """Places whose risk level is higher now than at the previous state."""
    start = now - dt.timedelta(seconds=watch["period_s"])
    code = watch["jurisdiction_code"]
    body = run_risk_places(conn, user, RiskPlacesQuery(code, start, now))
    before = watch["state"].get("places", {})
    names = {lv["level"]: lv for lv in body["levels"]}
    day = now.astimezone(LOCAL_TZ).date().isoformat()
    area = _name(conn, code)
    found = []
    for layer in ("key_areas", "grids"):
        zh_kind, en_kind = _PLACE_WORDS[layer]
        for feature in body[layer]["features"]:
            q = feature["properties"]
            old, new = before.get(f"{layer}:{q['id']}"), q["risk_level"]
            if old is None or new <= old:
                continue
            label = q.get("name") or q.get("code") or str(q["id"])
            lo, hi = names[old], names[new]
            found.append(Candidate(
                "risk_level", f"{layer}:{q['id']}:{old}>{new}:{day}",
                {"type": "Point", "coordinates": [q["lon"], q["lat"]]},
                {"kind": layer, "id": q["id"], "name": q.get("name"),
                 "category": q.get("category"), "level_before": old, "level": new,
                 "score": q["score"], "lon": q["lon"], "lat": q["lat"]},
                f"{area}（{code}）{zh_kind}“{label}”风险等级由{old}级（{lo['name_zh']}）升至"
                f"{new}级（{hi['name_zh']}），评分{q['score']}",
                f"The risk level of {en_kind} {label} in {area} ({code}) rose from {old} "
                f"({lo['name_en']}) to {new} ({hi['name_en']}), score {q['score']}"))
    return _risk_level_state(body), body["run_id"], found


CHECKS: dict[str, Callable[[Connection, User, dict, dt.datetime],
                           tuple[dict, int, list[Candidate]]]] = {
    "emerging": _check_emerging, "near_repeat": _check_near_repeat,
    "risk_level": _check_risk_level}


def _record(conn: Connection, watch: dict, run_id: int, now: dt.datetime,
            found: list[Candidate]) -> list[int]:
    """Insert the candidates not yet recorded for the watch; their ids."""
    ids = []
    for c in found:
        new = conn.execute(text(
            "INSERT INTO warnings (watch_id, jurisdiction_code, kind, key, geom, place, "
            "message_zh, message_en, run_id, created_at, until) VALUES (:w, :j, :k, :key, "
            "ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326), CAST(:p AS jsonb), :zh, :en, :r, :now, "
            ":until) ON CONFLICT (watch_id, key) DO NOTHING RETURNING id"),
            {"w": watch["id"], "j": watch["jurisdiction_code"], "k": c.kind, "key": c.key,
             "g": json.dumps(c.geometry), "p": json.dumps(c.place), "zh": c.message_zh,
             "en": c.message_en, "r": run_id, "now": now, "until": c.until}).scalar()
        if new is not None:
            ids.append(new)
    return ids


def check_watch(conn: Connection, watch_id: int, now: dt.datetime) -> list[int]:
    """Run one watch as of ``now`` (zone-aware); the ids of the warnings it recorded.

    The analysis runs as the watch's owner as they are now: Forbidden when they are no
    longer a user, no longer police or an admin, or may no longer analyse the
    jurisdiction.
    """
    watch = conn.execute(text(f"SELECT {_WATCH_COLUMNS} FROM watches WHERE id = :i FOR UPDATE"),
                         {"i": watch_id}).mappings().one()
    found_user = user_by_name(conn, watch["created_by"])
    if found_user is None:
        raise Forbidden(f"the watch's owner {watch['created_by']!r} is no longer a user")
    owner = found_user[0]
    if owner.role not in WATCH_ROLES:  # a planner sees no zones and only some cells
        raise Forbidden(f"the watch's owner {owner.name!r} is now a {owner.role}; police "
                        "and admins keep watches")
    state, run_id, found = CHECKS[watch["kind"]](conn, owner, dict(watch), now)
    ids = _record(conn, watch, run_id, now, found)
    conn.execute(text("UPDATE watches SET state = CAST(:s AS jsonb), checked_at = :now, "
                      "last_run = :r, last_error = NULL WHERE id = :i"),
                 {"s": json.dumps(state), "now": now, "r": run_id, "i": watch_id})
    return ids


def check_watches(engine: Engine, now: dt.datetime) -> list[dict]:
    """Run every watch as of ``now``, each in its own transaction.

    Returns one ``{"watch", "kind", "jurisdiction", "warnings": [ids], "error"}`` per
    watch; a watch whose check fails (its owner gone, parameters no longer usable) keeps
    its state, records ``last_error`` and does not stop the others.
    """
    if now.tzinfo is None:
        raise BadRequest("now must carry a time zone")
    now = now.astimezone(LOCAL_TZ)  # steps and zones end on local time, as over HTTP
    with engine.connect() as conn:
        watches = conn.execute(text("SELECT id, kind, jurisdiction_code FROM watches "
                                    "ORDER BY id")).all()
    out = []
    for watch_id, kind, code in watches:
        entry = {"watch": watch_id, "kind": kind, "jurisdiction": code, "warnings": [],
                 "error": None}
        try:
            with engine.begin() as conn:
                entry["warnings"] = check_watch(conn, watch_id, now)
        except SafegridError as exc:
            entry["error"] = str(exc).splitlines()[0]
            with engine.begin() as conn:
                conn.execute(text("UPDATE watches SET last_error = :e WHERE id = :i"),
                             {"e": entry["error"], "i": watch_id})
        out.append(entry)
    return out


# -- reading and acknowledging ------------------------------------------------------------


def _warning_feature(row) -> dict:
    return {"type": "Feature", "id": row["id"], "geometry": json.loads(row["geometry"]),
            "properties": {
                "id": row["id"], "watch": row["watch_id"],
                "jurisdiction": row["jurisdiction_code"], "kind": row["kind"],
                "place": row["place"], "message_zh": row["message_zh"],
                "message_en": row["message_en"], "run": row["run_id"],
                "created_at": row["created_at"].isoformat(),
                "until": row["until"] and row["until"].isoformat(),
                "acknowledged_by": row["acknowledged_by"],
                "acknowledged_at": row["acknowledged_at"] and
                row["acknowledged_at"].isoformat()}}


_WARNING_COLUMNS = ("id, watch_id, jurisdiction_code, kind, place, message_zh, message_en, "
                    "run_id, created_at, until, acknowledged_by, acknowledged_at, "
                    "ST_AsGeoJSON(geom, 7) AS geometry")


def _visible_to(user: User, row) -> bool:
    """Whether an aggregate role may see the warning (see the module's text)."""
    if user.role not in AGGREGATE_ONLY:
        return True
    if row["kind"] == "near_repeat_zone":
        return False
    return row["place"].get("count", MIN_SHOWN) >= MIN_SHOWN


def list_warnings(conn: Connection, user: User, jurisdiction: str | None = None,
                  since: dt.datetime | None = None, open_only: bool = False,
                  now: dt.datetime | None = None) -> dict:
    """Warnings the user may see, newest first, as a FeatureCollection (lon/lat).

    ``jurisdiction``: that one and those under it (UnknownJurisdiction, Forbidden when
    outside the user's); ``since``: created at or after it; ``open_only``: not
    acknowledged and, for zones, not ended by ``now`` (default: the present). At most
    1000. Forbidden for border partners.
    """
    if user.role == "border_partner":
        raise Forbidden("a border partner sees the border zone only (/api/border); "
                        "warnings are about whole jurisdictions")
    codes = None
    if jurisdiction is not None:
        if conn.execute(text("SELECT 1 FROM jurisdictions WHERE code = :c"),
                        {"c": jurisdiction}).first() is None:
            raise UnknownJurisdiction(f"unknown jurisdiction {jurisdiction!r}")
        require_within(conn, user, jurisdiction)
        codes = subtree_codes(conn, jurisdiction)
    now = now or dt.datetime.now(dt.UTC)
    _enter_scope(conn, user)
    rows = conn.execute(text(
        f"SELECT {_WARNING_COLUMNS} FROM warnings "
        "WHERE (CAST(:codes AS text[]) IS NULL OR jurisdiction_code = ANY(CAST(:codes AS "
        "text[]))) "
        "AND (CAST(:since AS timestamptz) IS NULL OR created_at >= :since) "
        "AND (NOT :open OR (acknowledged_at IS NULL AND (until IS NULL OR until > :now))) "
        "ORDER BY created_at DESC, id DESC LIMIT 1000"),
        {"codes": codes, "since": since, "open": open_only, "now": now}).mappings().all()
    shown = [r for r in rows if _visible_to(user, r)]
    return {"type": "FeatureCollection", "features": [_warning_feature(r) for r in shown],
            "withheld": len(rows) - len(shown)}


def acknowledge(conn: Connection, user: User, warning_id: int) -> dict:
    """Mark a warning acknowledged by ``user`` now; the warning.

    Forbidden for roles other than police and admins, NotFound for a warning the user
    may not see, Conflict for one already acknowledged (naming by whom and when).
    """
    _require_role(user)
    _enter_scope(conn, user)
    row = conn.execute(text(f"SELECT {_WARNING_COLUMNS} FROM warnings WHERE id = :i "
                            "FOR UPDATE"), {"i": warning_id}).mappings().first()
    if row is None:
        raise NotFound(f"there is no warning {warning_id} that you may see")
    if row["acknowledged_at"] is not None:
        raise Conflict(f"warning {warning_id} was acknowledged by {row['acknowledged_by']} at "
                       f"{row['acknowledged_at'].isoformat()}")
    after = conn.execute(text(
        f"UPDATE warnings SET acknowledged_by = :u, acknowledged_at = now() WHERE id = :i "
        f"RETURNING {_WARNING_COLUMNS}"), {"u": user.name, "i": warning_id}).mappings().one()
    feature = _warning_feature(after)
    audit_row(conn, user.name, "warnings", "acknowledge", _warning_feature(row)["properties"],
              feature["properties"], warning_id)
    return feature
