"""HTML pages: the map."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from layers.db import ping
from layers.overview import cities

from .auth import current_user
from .db import db_engine
from .mapview import BadParameter, build_map, page_lang, render_page

bp = Blueprint("pages", __name__)
# /map when no city is stored or none lies in the user's scope
_NOTHING_TO_SHOW = {
    "zh": '<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>平安网格</title>'
          "</head><body><h1>平安网格</h1><p>还没有可显示的城市：数据库中尚无辖区，或您的辖区"
          "不在任何城市中。管理员可运行 <code>safegrid demo</code>（示例数据）或 "
          "<code>safegrid import jurisdictions 文件</code> 载入辖区。</p>"
          '<p><a href="/map?lang=en">English</a></p></body></html>',
    "en": '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>safegrid</title>'
          "</head><body><h1>safegrid</h1><p>There is no city to show yet: no jurisdictions "
          "are loaded, or yours lies in none of the cities. An administrator can run "
          "<code>safegrid demo</code> (demo data) or <code>safegrid import jurisdictions "
          "FILE</code> to load them.</p>"
          '<p><a href="/map?lang=zh">中文</a></p></body></html>',
}


@bp.get("/map")
def map_page():
    """The Folium map of one city (``?city=CODE``, default the first) in ``?lang=zh|en``."""
    engine = db_engine(current_app)
    lang = page_lang()
    with engine.connect() as conn:
        known = cities(conn, current_user())
    if not known:
        return Response(_NOTHING_TO_SHOW[lang], mimetype="text/html")
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
