"""HTML pages: the map."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from layers.db import ping
from layers.overview import cities

from .app import db_engine
from .auth import current_user
from .mapview import BadParameter, build_map, page_lang, render_page

bp = Blueprint("pages", __name__)


@bp.get("/map")
def map_page():
    """The Folium map of one city (``?city=CODE``, default the first) in ``?lang=zh|en``."""
    engine = db_engine(current_app)
    lang = page_lang()
    with engine.connect() as conn:
        known = cities(conn, current_user())
    if not known:
        return Response(
            "<h1>safegrid</h1><p>No jurisdictions loaded yet: run "
            "<code>safegrid demo</code> or <code>safegrid import jurisdictions FILE</code>.</p>",
            mimetype="text/html",
        )
    city = request.args.get("city", known[0].code)
    if city not in {c.code for c in known}:
        raise BadParameter(
            f"city {city!r} is not a city you may see; yours: "
            f"{', '.join(c.code for c in known)}"
        )
    return Response(render_page(build_map(engine, current_user(), city, lang)),
                    mimetype="text/html")


@bp.get("/healthz")
def health():
    """Liveness: 200 when the database answers."""
    ping(db_engine(current_app))
    return {"status": "ok"}
