"""Errors of the web pages, for a person: an HTML page in the page language.

The API answers errors as JSON (``{"error": ...}``). A person who opens a page of the
web map (``/map…``, ``/reports/…``) in a browser gets instead a short page saying, in
Chinese or English, what went wrong and what to do, with a link back to the overview;
the API's own message is kept under 技术信息 / Technical details.
"""

from __future__ import annotations

from html import escape

from flask import Response, request

__all__ = ["ERROR_TEXT", "error_page", "wants_page"]

PAGE_PREFIXES = ("/map", "/reports/")
DATA_PREFIXES = ("/map/layers/",)  # fetched by the pages' scripts: JSON errors

ERROR_TEXT = {
    "zh": {
        400: ("请求有误", "地址中的参数不完整或不正确。请从总图上的链接进入本页。"),
        403: ("无权查看", "本页不在您账号的权限范围内。如需查看，请联系系统管理员。"),
        404: ("未找到", "所要的内容不存在或已被删除。"),
        429: ("请求过于频繁", "请稍候片刻再试。"),
        500: ("暂时无法显示", "服务器出了问题，请稍后再试；如仍不行，请联系系统管理员。"),
        "back": "返回总图", "details": "技术信息", "title": "平安网格",
    },
    "en": {
        400: ("Not a valid request", "The address lacks a parameter or holds a wrong one. "
                                     "Open this page from a link on the overview map."),
        403: ("Not allowed", "This page is outside what your account may see. Ask your "
                             "administrator if you need it."),
        404: ("Not found", "What was asked for does not exist or was removed."),
        429: ("Too many requests", "Wait a moment and try again."),
        500: ("Cannot be shown now", "The server met a problem. Try again later; if it "
                                     "persists, tell your administrator."),
        "back": "Back to the overview map", "details": "Technical details", "title": "safegrid",
    },
}


def wants_page() -> bool:
    """Whether this request is a person opening a page (HTML preferred, a page's path)."""
    path = request.path
    if not path.startswith(PAGE_PREFIXES) or path.startswith(DATA_PREFIXES):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and "f" not in request.args


def _lang() -> str:
    lang = request.args.get("lang", "zh")
    return lang if lang in ERROR_TEXT else "zh"


def error_page(status: int, detail: str, headers: dict | None = None) -> Response:
    """The HTML page of an error with HTTP ``status``; ``detail`` is the API's message."""
    lang = _lang()
    t = ERROR_TEXT[lang]
    heading, advice = t.get(status) or t[500 if status >= 500 else 400]
    page = f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(heading)} · {escape(t["title"])}</title>
<style>body{{font:15px sans-serif;max-width:36em;margin:10vh auto;padding:0 1em}}
h1{{font-size:1.4em}} details{{margin-top:2em;color:#555}} pre{{white-space:pre-wrap}}</style>
</head><body><h1>{escape(heading)}</h1><p>{escape(advice)}</p>
<p><a href="/map?lang={lang}">{escape(t["back"])}</a></p>
<details><summary>{escape(t["details"])} ({status})</summary>
<pre lang="en">{escape(detail)}</pre></details></body></html>"""
    response = Response(page, status, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response
