"""JSON answers gzip-compressed for the browsers that accept it.

Feature collections shrink to a fifth or less: the maps' layers and camera views load
in a fraction of the bytes. Small answers go as they are.
"""

from __future__ import annotations

import gzip

from flask import Response, request

MIN_COMPRESSED = 1400  # bytes: below about one packet compressing gains nothing


def json_response(body: str, content_type: str = "application/json",
                  headers: dict | None = None) -> Response:
    """``body`` (JSON text) as a 200 answer, gzipped when the client accepts it."""
    data = body.encode()
    headers = {"Vary": "Accept-Encoding", **(headers or {})}
    if len(data) >= MIN_COMPRESSED and "gzip" in request.accept_encodings:
        data = gzip.compress(data, compresslevel=1)  # 5 times faster than 5, 15% larger
        headers["Content-Encoding"] = "gzip"
    return Response(data, 200, content_type=content_type, headers=headers)
