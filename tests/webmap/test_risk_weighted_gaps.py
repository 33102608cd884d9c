"""Coverage gaps and siting weigh a place's gaps by its risk level.

On the small demo: without a risk grading every gap weighs its category weight alone;
after one, each gap's risk is multiplied by the weight of its key area's level
(1.0, 1.5, 2.0, 3.0 for levels 1-4); incidents planted at one key area (in 2020, a year
the demo leaves empty, so the gaps' own incident surface of the last 365 days does not
change) raise its level and move its gap up the ranking.
"""

import pytest

from geo.coverage import CATEGORY_WEIGHT
from layers.coverage import RISK_LEVEL_WEIGHTS
from tests.webmap.test_risk_places_api import AREA, plant_incidents, remove_planted

pytestmark = pytest.mark.db

GAPS = f"/api/coverage/gaps?jurisdiction={AREA}&target=key_areas"
GRADE = f"/api/risk/places?jurisdiction={AREA}&from=2020-01-01&to=2020-12-31"


@pytest.fixture
def clean(db, demo_small):
    remove_planted(db)
    yield
    remove_planted(db)


def _gaps(api) -> dict[tuple, dict]:
    r = api("police", GAPS)
    assert r.status_code == 200, r.text[:300]
    body = r.json()
    return body, {(f["properties"]["target_id"], f["properties"]["area_m2"]): f["properties"]
                  for f in body["features"]}


def _best_rank(gaps: dict, target: int) -> int:
    return min(p["rank"] for (t, _), p in gaps.items() if t == target)


def test_a_higher_level_moves_a_place_up_the_gap_ranking(api, db, clean):
    plain_body, plain = _gaps(api)
    said = plain_body["parameters"]["risk_level_weights"]
    assert said["run"] is None and said["graded_targets"] == 0
    assert all(p["risk_level"] is None and p["weight"] == CATEGORY_WEIGHT.get(p["category"], 1)
               for p in plain.values())

    quiet = api("police", GRADE).json()
    levels = {f["id"]: f["properties"]["risk_level"] for f in quiet["key_areas"]["features"]}
    graded_body, graded = _gaps(api)
    said = graded_body["parameters"]["risk_level_weights"]
    assert said["run"] == quiet["run_id"] and said["graded_targets"] == len(levels)
    assert said["weights"] == {"1": 1.0, "2": 1.5, "3": 2.0, "4": 3.0}
    assert graded.keys() == plain.keys()
    for key, p in graded.items():
        factor = RISK_LEVEL_WEIGHTS[levels[p["target_id"]]]
        assert p["risk_level"] == levels[p["target_id"]]
        assert p["weight"] == pytest.approx(plain[key]["weight"] * factor)
        assert p["risk"] == pytest.approx(plain[key]["risk"] * factor, rel=1e-3, abs=2e-4)

    # a key area of level 1 or 2 whose best gap, weighed as at level 4, would pass the gap
    # ranked just above it
    by_rank = {p["rank"]: p for p in graded.values()}

    def passes(f) -> bool:
        rank = _best_rank(graded, f["id"])
        own = by_rank[rank]["risk"] / RISK_LEVEL_WEIGHTS[f["properties"]["risk_level"]]
        return rank > 1 and own * RISK_LEVEL_WEIGHTS[4] > by_rank[rank - 1]["risk"]

    candidates = [f for f in quiet["key_areas"]["features"] if f["properties"]["risk_level"]
                  <= 2 and any(t == f["id"] for t, _ in graded) and passes(f)]
    assert candidates, "the demo should have a gap a higher level moves up"
    target = min(candidates, key=lambda f: f["properties"]["score"])
    before = target["properties"]["risk_level"]
    plant_incidents(db, target["properties"]["lon"], target["properties"]["lat"], 12)
    busy = api("police", GRADE).json()
    after = next(f["properties"]["risk_level"] for f in busy["key_areas"]["features"]
                 if f["id"] == target["id"])
    assert after == 4 > before
    _, raised = _gaps(api)
    assert _best_rank(raised, target["id"]) < _best_rank(graded, target["id"])
    for key, p in raised.items():
        if key[0] == target["id"]:
            assert p["risk"] == pytest.approx(graded[key]["risk"] * RISK_LEVEL_WEIGHTS[after]
                                              / RISK_LEVEL_WEIGHTS[before], rel=1e-3,
                                              abs=2e-4)


def test_siting_says_which_grading_weighs_its_demand(api, clean):
    quiet = api("police", GRADE).json()
    r = api("police", "/api/coverage/siting", method="POST",
            json={"jurisdiction": AREA, "target": "key_areas", "k": 1})
    assert r.status_code == 200, r.text[:300]
    said = r.json()["parameters"]["risk_level_weights"]
    assert said["run"] == quiet["run_id"] and said["graded_targets"] > 0
    roads = api("police", f"/api/coverage/gaps?jurisdiction={AREA}&target=roads").json()
    assert roads["parameters"]["risk_level_weights"]["note"] == "roads are not graded"
