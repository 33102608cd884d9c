"""If-Match as RFC 9110 §13.1.1 reads it: any entity tag, weak tags, lists and ``*``."""

import pytest
from sqlalchemy import text

pytestmark = pytest.mark.db

MERGE = "application/merge-patch+json"


@pytest.fixture()
def camera(db, demo_small):
    """A camera of city 430100 (one the bad-request corpus does not use)."""
    with db.connect() as conn:
        return conn.execute(text("SELECT id FROM cameras WHERE jurisdiction_code LIKE '4301%' "
                                 "ORDER BY id DESC LIMIT 1")).scalar_one()


def patch(api, camera: int, if_match: str, fov: float):
    return api("police", f"/collections/cameras/items/{camera}", method="PATCH",
               json={"properties": {"fov": fov}},
               headers={"Content-Type": MERGE, "If-Match": if_match})


def current(api, camera: int) -> tuple[str, float]:
    r = api("police", f"/collections/cameras/items/{camera}")
    assert r.status_code == 200
    return r.headers["ETag"], r.json()["properties"]["fov"]


@pytest.mark.parametrize("tag", ['"stale-version"', 'W/"{v}"', '"0"', '"{v}0"'])
def test_a_tag_that_does_not_match_gets_412_with_the_current_feature(api, camera, tag):
    etag, fov = current(api, camera)
    r = patch(api, camera, tag.format(v=etag.strip('"')), fov + 1)
    assert r.status_code == 412, r.text
    assert r.headers["ETag"] == etag  # the version to build on
    assert current(api, camera) == (etag, fov)  # nothing written


@pytest.mark.parametrize("tag", ["*", '"999999", {etag}', 'W/"x",{etag}'])
def test_star_or_a_list_holding_the_current_tag_matches(api, camera, tag):
    etag, fov = current(api, camera)
    r = patch(api, camera, tag.format(etag=etag), fov + 1)
    assert r.status_code == 200, r.text
    assert int(r.headers["ETag"].strip('"')) == int(etag.strip('"')) + 1
    assert current(api, camera)[1] == fov + 1
    patch(api, camera, r.headers["ETag"], fov)  # as it was
