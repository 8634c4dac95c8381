"""The plan bar as a browser paints it: green below 90 % of the subscriber limit, amber from
90 %, red past the limit (issue 9 item 6; it was green at 453 %)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD
from tests.factories import make_contacts, make_list
from webapp.extensions import db
from webapp.models import WorkspaceSettings


def _middle_pixel(png: bytes) -> tuple[int, int, int]:
    """The RGB of the middle pixel of an 8-bit RGB(A) PNG (enough for a flat bar)."""
    width, height, depth, kind = struct.unpack(">IIBB", png[16:26])
    assert depth == 8 and kind in (2, 6)
    data, pos = b"", 8
    while pos < len(png):
        (size,) = struct.unpack(">I", png[pos:pos + 4])
        if png[pos + 4:pos + 8] == b"IDAT":
            data += png[pos + 8:pos + 8 + size]
        pos += 12 + size
    raw, bpp = zlib.decompress(data), 3 if kind == 2 else 4
    stride, rows, prev = width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        ftype, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            a = cur[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                cur[i] = (cur[i] + a) & 255
            elif ftype == 2:
                cur[i] = (cur[i] + b) & 255
            elif ftype == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(cur)
        prev = cur
    x, y = width // 4, height // 2  # a quarter in: inside the filled part at every level
    return tuple(rows[y][x * bpp:x * bpp + 3])


@pytest.mark.e2e
def test_the_plan_bar_turns_amber_at_90_and_red_past_100(page: Page, live_server: str, user,
                                                         output_path):
    shots = Path(output_path)
    shots.mkdir(parents=True, exist_ok=True)
    settings = WorkspaceSettings.get()
    settings.subscriber_limit = 100
    db.session.commit()
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    target, have = make_list("Customers"), 0
    colours = {}
    for count, level in [(80, "ok"), (90, "warn"), (453, "over")]:
        make_contacts(target, count - have, start=have)
        have = count
        page.goto(f"{live_server}/settings/")
        meter = page.locator("meter.plan-bar")
        expect(meter).to_have_attribute("data-level", level)
        png = meter.screenshot(path=str(shots / f"plan_bar_{level}.png"))
        colours[level] = _middle_pixel(png)
    (gr, gg, gb), (ar, ag, ab), (rr, rg, rb) = colours["ok"], colours["warn"], colours["over"]
    assert gg > gr and gg > gb, colours  # green
    assert ar > 200 and 100 < ag < 200 and ab < 80, colours  # amber
    assert rr > 180 and rg < 90 and rb < 90, colours  # red
