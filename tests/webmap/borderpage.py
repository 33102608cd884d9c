"""What the border page's browser tests share: its state's name, reading its zone's
style and its times as the page writes them, opening a marker's popup, screenshots."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from layers.validate import LOCAL_TZ

from .browser import OUTPUT

STATE = "window.safegridBorderState"


def open_popup(page, selector: str) -> str:
    """Click (the mouse) the first marker of ``selector`` nothing covers; its popup's text."""
    markers = page.locator(selector)
    for i in range(markers.count()):
        try:
            markers.nth(i).click(timeout=1500)
        except PlaywrightTimeout:  # under another marker: the next
            continue
        return page.wait_for_selector(".leaflet-popup-content").text_content()
    raise AssertionError(f"no marker of {selector} could be clicked")


def clock(iso: str) -> str:
    """``iso`` as the page writes it: HH:MM in Asia/Shanghai ("MM-DD HH:MM" if not today)."""
    when = dt.datetime.fromisoformat(iso).astimezone(LOCAL_TZ)
    today = dt.datetime.now(LOCAL_TZ).date()
    return when.strftime("%H:%M") if when.date() == today else when.strftime("%m-%d %H:%M")


def shot(page, name: str) -> None:
    """A screenshot of the page in test-output/, once the map has zoomed to the zone."""
    page.wait_for_timeout(400)  # the map's zoom to the zone
    page.screenshot(path=str(OUTPUT / name))


def dashed_sides(page) -> dict[str, bool]:
    """Side code -> whether its part of the zone is drawn dashed."""
    return page.evaluate(f"""() => {{
      const out = {{}};
      {STATE}.zone.eachLayer(g => g.eachLayer && g.eachLayer(l => {{
        if (l.feature && l.feature.properties.side && l.feature.geometry.type !== 'Point'
            && 'area_m2' in l.feature.properties)
          out[l.feature.properties.side] = !!l.options.dashArray;
      }}));
      return out;
    }}""")


def swatch_borders(page) -> list[str]:
    """The border style of each swatch of the key ("dashed" for a partner's side)."""
    return page.eval_on_selector_all("#sg-legend .sg-swatch",
                                     "s => s.map(e => e.style.borderStyle)")
