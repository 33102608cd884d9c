"""Leaflet's own controls in the page language: zoom buttons, a metric scale, the credit.

Leaflet's defaults speak English ("Zoom in", "A JavaScript library for interactive maps")
and its scale shows feet and miles. :class:`LocalControls` adds the zoom buttons and a
metric-only scale with titles in the page language and gives the credit a translated
title; the map is made with ``zoom_control=False`` and ``control_scale=False``.
"""

from __future__ import annotations

from html import escape

from branca.element import MacroElement
from folium.template import Template

__all__ = ["CONTROL_TEXT", "LocalControls"]

CONTROL_TEXT = {
    "zh": {"zoom_in": "放大", "zoom_out": "缩小", "layers": "图层",
           "leaflet": "Leaflet：交互地图程序库"},
    "en": {"zoom_in": "Zoom in", "zoom_out": "Zoom out", "layers": "Layers",
           "leaflet": "Leaflet: a JavaScript library for interactive maps"},
}


class LocalControls(MacroElement):
    """Zoom buttons (top left), a metric scale (bottom left) and the credit in ``lang``."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        L.control.zoom({zoomInTitle: {{ this.text.zoom_in|tojson }},
                        zoomOutTitle: {{ this.text.zoom_out|tojson }},
                        position: "topleft"}).addTo({{ this._parent.get_name() }});
        L.control.scale({imperial: false, metric: true})
            .addTo({{ this._parent.get_name() }});
        {{ this._parent.get_name() }}.attributionControl.setPrefix({{ this.prefix|tojson }});
        {% endmacro %}
        """)

    def __init__(self, lang: str):
        super().__init__()
        self._name = "LocalControls"
        self.text = CONTROL_TEXT.get(lang, CONTROL_TEXT["zh"])
        self.prefix = (f'<a href="https://leafletjs.com" title="{escape(self.text["leaflet"])}">'
                       "Leaflet</a>")
